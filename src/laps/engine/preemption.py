"""Stop requests from the scheduler: SIGTERM and SIGUSR1 during training.

SLURM (``--signal``, ``scancel``), Kubernetes and most batch systems ask a job to stop with
SIGTERM, some first with SIGUSR1, and kill it a grace period later. While :class:`StopSignals` is
active, those signals only set a flag: the trainer checks it at the next optimizer step (or
evaluation batch), writes a checkpoint of the exact position in the epoch, and raises
:class:`~laps.errors.Preempted`, which ``laps train`` turns into exit code
:data:`~laps.errors.Preempted.exit_code` (75). ``--resume`` then continues from that step.

Handlers are process-wide, so they are installed only for the length of the ``with`` block, from
the main thread, and the previous ones are put back afterwards. DataLoader worker processes
started inside the block inherit them, so a signal sent to the whole process group does not kill a
worker before the main process has written its checkpoint.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

logger = logging.getLogger(__name__)

#: the signals that ask a run to checkpoint and stop
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))


class StopSignals:
    """While active (``with``), remember the first stop signal instead of dying of it."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        """Name of the signal received (``""`` before any)."""
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            logger.warning("received %s: writing a checkpoint at the next step, then stopping",
                           signal.Signals(signum).name)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
