"""The processes laps forks (loader workers, process-pool workers) inherit no FFmpeg object they could free.

A parent may hold FFmpeg objects waiting for the garbage collector: a decoder whose container a
notebook closed, a context in a reference cycle. Freed in a forked child, which has none of their
threads, such an object waits for them forever (seen with PyAV 17.0: ``avcodec_free_context`` ->
``avpriv_slicethread_free`` -> ``pthread_cond_destroy``, from a collection that torch's worker start
set off before any ``worker_init_fn`` ran). So laps forks through :data:`FORK`, whose processes are
started with every object of the parent frozen (:func:`gc.freeze`, as Python's documentation
advises before a fork): the child never collects what it inherited, and the parent unfreezes them
at once. The objects a worker makes itself are collected as usual; the rule for those is in
:mod:`laps.data.reformat`.
"""

from __future__ import annotations

import gc
import multiprocessing.context
import sys


class _Process(multiprocessing.context.ForkProcess):
    """A forked process that never frees what it inherited."""

    def start(self) -> None:
        owned = gc.get_freeze_count() == 0  # objects someone else froze stay as they are
        gc.freeze()
        try:
            super().start()
        finally:
            if owned:
                gc.unfreeze()

    def run(self) -> None:
        gc.freeze()  # the child: also what was made between the fork and here
        super().run()


class _ForkContext(multiprocessing.context.ForkContext):
    Process = _Process


#: the start method of laps's workers on Linux: fork (start-up in 0.3 s, where forkserver and spawn
#: workers import torch again, 16-19 s), through :class:`_Process`
FORK = _ForkContext()


def worker_context(workers: int) -> multiprocessing.context.BaseContext | None:
    """The ``multiprocessing_context`` (``mp_context``) for ``workers`` worker processes: :data:`FORK`
    on Linux, else None (the platform's default; macOS and Windows spawn)."""
    return FORK if workers > 0 and sys.platform == "linux" else None
