"""Stop requests from the scheduler: SIGTERM and SIGUSR1 during training.

SLURM (``--signal``, ``scancel``), Kubernetes and most batch systems ask a job to stop with
SIGTERM, some first with SIGUSR1, and kill it a grace period later. While :class:`StopSignals` is
active, those signals only set a flag: the trainer checks it at the next optimizer step (or
evaluation batch), writes a checkpoint of the exact position in the epoch, and raises
:class:`~laps.errors.Preempted`, which ``laps train`` turns into exit code
:data:`~laps.errors.Preempted.exit_code` (75). ``--resume`` then continues from that step.

While the main process waits for a batch from the data loader (:meth:`StopSignals.interrupting`),
a stop signal ends the wait at once instead: the handler ends the wait's source (the loader's
workers) and raises :class:`StopWhileWaiting`, since a loader whose workers are stuck would never
give the next step.

Handlers are process-wide, so they are installed only for the length of the ``with`` block, from
the main thread, and the previous ones are put back afterwards. A signal sent to the whole process
group reaches the DataLoader workers too: they leave it to the main process, and live until it ends
them (:mod:`laps.data.workers`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)

#: the signals that ask a run to checkpoint and stop
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))


class StopWhileWaiting(BaseException):
    """A stop signal arrived while the main process waited for a batch (``signum``: which); like
    KeyboardInterrupt, not an :class:`Exception`, so that the loader's own error handling lets it by."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """While active (``with``), remember the first stop signal instead of dying of it."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: int | None = None
        self._previous: dict[int, object] = {}
        self._waiting: Callable[[], None] | None = None  # inside interrupting(): what ends the wait

    @property
    def name(self) -> str:
        """Name of the signal received (``""`` before any)."""
        return signal.Signals(self.received).name if self.received is not None else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            if not self._waiting:
                logger.warning("received %s: writing a checkpoint at the next step, then stopping",
                               signal.Signals(signum).name)
        if self._waiting is not None:
            end, self._waiting = self._waiting, None
            end()
            raise StopWhileWaiting(signum)

    @contextmanager
    def interrupting(self, end: Callable[[], None]) -> Iterator[None]:
        """A block that waits (for a batch): a stop signal inside it calls ``end()`` (which ends
        what it waits for: the loader's workers, before the wait lets go of a batch half
        received), then raises :class:`StopWhileWaiting`."""
        self._waiting = end
        try:
            yield
        finally:
            self._waiting = None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
