"""What the main process can ask of its DataLoader workers: their threads' stacks, and their end.

:class:`LoaderWorkers` is a loader's ``worker_init_fn``: each worker notes its process id in shared
memory and has :mod:`faulthandler` print every thread's stack to stderr on :data:`STACKS_SIGNAL`.
faulthandler writes from its C signal handler, so a worker stuck in native code (a decoder waiting
on a lock) prints where it is too. The main process asks with :meth:`LoaderWorkers.dump`, and ends
them at once with :meth:`LoaderWorkers.end`: torch's workers exit (status 0) on SIGTERM from their
parent, wherever they are stuck, where the loader's own shutdown would wait seconds for each.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import time

import torch

#: the signal that makes a worker print its stacks (SIGTERM and SIGUSR1 ask a run to stop)
STACKS_SIGNAL = signal.SIGUSR2


class LoaderWorkers:
    """``worker_init_fn`` of a loader with ``workers`` processes; :meth:`dump` prints their stacks."""

    def __init__(self, workers: int) -> None:
        self.pids = torch.zeros(workers, dtype=torch.int64).share_memory_()

    def __call__(self, worker_id: int) -> None:
        """In worker ``worker_id``, as it starts."""
        self.pids[worker_id] = os.getpid()
        faulthandler.register(STACKS_SIGNAL, all_threads=True)

    def dump(self, wait: float = 1.0) -> int:
        """Have every started worker print its stacks to stderr, and wait ``wait`` seconds for them
        -> how many workers were asked."""
        asked = self._signal(STACKS_SIGNAL)
        if asked:
            time.sleep(wait)
        return asked

    def end(self) -> None:
        """End every worker now (the loader is not used again)."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> int:
        """Send ``signum`` to every started worker -> how many there were."""
        pids = [pid for pid in self.pids.tolist() if pid]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a worker that has ended
                os.kill(pid, signum)
        return len(pids)
