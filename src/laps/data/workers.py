"""What the main process can ask of its DataLoader workers: their threads' stacks, and their end.

:class:`LoaderWorkers` is a loader's ``worker_init_fn``: each worker notes its process id in shared
memory and has :mod:`faulthandler` print every thread's stack to stderr on :data:`STACKS_SIGNAL`.
faulthandler writes from its C signal handler, so a worker stuck in native code (a decoder waiting
on a lock) prints where it is too. The main process asks with :meth:`LoaderWorkers.dump`, and ends
them at once with :meth:`LoaderWorkers.end`: torch's workers exit (status 0) on SIGTERM from their
parent, wherever they are stuck, where the loader's own shutdown would wait seconds for each.

A scheduler that stops a job (SLURM's ``scancel``, a time limit) signals every process of it, the
workers included, with SIGTERM or SIGUSR1. torch's worker dies of a SIGTERM that does not come from
its parent, and runs on SIGUSR1 whatever handler it inherited (by default: death); the main process
then fails wherever it is ("DataLoader worker ... is killed by signal") instead of writing its
checkpoint. So a loader started with :func:`iterate` forks its workers with :data:`GROUP_SIGNALS`
blocked (every thread of a worker inherits the mask) and each leaves them to one thread that
waits for them (:func:`signal.sigtimedwait`): SIGTERM from the parent (the loader's shutdown,
:meth:`LoaderWorkers.end`, multiprocessing's exit) ends the worker as torch's own handler would;
any other is left to the main process, which ends the workers when it stops. The thread also ends
the worker within :data:`PARENT_CHECK_S` seconds of the parent's death, wherever it is stuck
(unless it holds the GIL there: then so does the thread).
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

#: the signal that makes a worker print its stacks (SIGTERM and SIGUSR1 ask a run to stop)
STACKS_SIGNAL = signal.SIGUSR2
#: the signals a scheduler sends a whole job to stop it: only the main process acts on them
GROUP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: how often (seconds) a worker checks that its parent is alive
PARENT_CHECK_S = 1.0


class LoaderWorkers:
    """``worker_init_fn`` of a loader with ``workers`` processes; :meth:`dump` prints their stacks."""

    def __init__(self, workers: int) -> None:
        self.pids = torch.zeros(workers, dtype=torch.int64).share_memory_()

    def __call__(self, worker_id: int) -> None:
        """In worker ``worker_id``, as it starts."""
        self.pids[worker_id] = os.getpid()
        faulthandler.register(STACKS_SIGNAL, file=_stderr_fd(), all_threads=True)
        leave_stop_signals_to(os.getppid())

    def dump(self, wait: float = 1.0) -> int:
        """Have every started worker print its stacks to stderr, and wait ``wait`` seconds for them
        -> how many workers were asked."""
        asked = self._signal(STACKS_SIGNAL)
        if asked:
            time.sleep(wait)
        return asked

    def end(self, wait: float = 2.0) -> None:
        """End every worker now (the loader is not used again): SIGTERM, up to ``wait`` seconds for
        them to be gone (a worker that outlived this process's exit would print a traceback for
        each batch it was handing over), then SIGKILL for any still there (one stuck in native code
        holding the GIL cannot run the thread that takes SIGTERM)."""
        pids = [pid for pid in self.pids.tolist() if pid]
        self._signal(signal.SIGTERM)
        deadline = time.monotonic() + wait
        while any(map(_running, pids)) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._signal(signal.SIGKILL, [pid for pid in pids if _running(pid)])  # stuck holding the GIL

    def _signal(self, signum: int, pids: list[int] | None = None) -> int:
        """Send ``signum`` to ``pids`` (default: every started worker) -> how many there were."""
        pids = [pid for pid in self.pids.tolist() if pid] if pids is None else pids
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # a worker that has ended
                os.kill(pid, signum)
        return len(pids)


def _stderr_fd() -> int:
    """The file descriptor of ``sys.stderr``, or 2 where it has none (a notebook's, pytest's capture)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        return 2


def _running(pid: int) -> bool:
    """Whether child process ``pid`` has not exited (it is left to be reaped by its owner)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:  # not a child of this process, or reaped
        return False


def iterate(loader: DataLoader) -> Iterator:
    """``iter(loader)``; the workers it starts (a :class:`LoaderWorkers` loader's) leave
    :data:`GROUP_SIGNALS` to this process."""
    if not isinstance(loader.worker_init_fn, LoaderWorkers):
        return iter(loader)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)  # pending ones come when put back
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def leave_stop_signals_to(parent: int) -> None:
    """In a worker forked by :func:`iterate` (:data:`GROUP_SIGNALS` blocked): end it only on
    SIGTERM from ``parent``, or when ``parent`` is gone."""
    signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)  # also when started otherwise
    threading.Thread(target=_watch, args=(parent,), name="laps-stop-signals", daemon=True).start()


def _watch(parent: int) -> None:
    while True:
        info = signal.sigtimedwait(GROUP_SIGNALS, PARENT_CHECK_S)
        if os.getppid() != parent or (info is not None and info.si_signo == signal.SIGTERM and info.si_pid == parent):
            os._exit(0)  # what torch's worker does on SIGTERM from its parent
