"""Waiting for the data loader: never forever, and never past a stop signal.

- :func:`batches` yields a loader's batches; a stop signal that arrives while the main process
  waits for one ends the workers and is handed to ``on_stop`` at once
  (:meth:`~laps.engine.preemption.StopSignals.interrupting`).
- :func:`loader_limit` ends a run whose loader gave no batch within its ``timeout``
  (``data.loader_timeout``) with :class:`~laps.errors.LoaderStalled`: the workers print every
  thread's stack to stderr (:class:`~laps.data.workers.LoaderWorkers`), then one line names the wait.

Either way the workers are ended at once: stuck ones would keep the process from exiting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch.utils.data import DataLoader

from laps.data.workers import LoaderWorkers, iterate
from laps.engine.preemption import StopSignals, StopWhileWaiting
from laps.errors import LoaderStalled

#: how torch's DataLoader words a batch that did not come within its timeout
TIMED_OUT = "DataLoader timed out"


def batches(loader: DataLoader, stop: StopSignals, on_stop: Callable[[int], None], start: int = 0) -> Iterator:
    """The batches of ``loader``; a stop signal during the wait for batch ``k`` (counted from
    ``start``) ends the loader's workers and calls ``on_stop(k)``, which raises."""
    iterator, index = iterate(loader), start
    while True:
        try:
            with stop.interrupting(lambda: end_workers([loader])):
                batch = next(iterator)
        except StopIteration:
            return
        except StopWhileWaiting:
            on_stop(index)
            raise
        yield batch
        index += 1


@contextmanager
def loader_limit(*loaders: DataLoader | None) -> Iterator[None]:
    """A block in which a loader's timeout raises :class:`LoaderStalled`, after the workers of
    ``loaders`` have printed their stacks."""
    try:
        yield
    except RuntimeError as err:
        if not str(err).startswith(TIMED_OUT):
            raise
        raise stalled([loader for loader in loaders if loader is not None and loader.num_workers]) from None


def stalled(loaders: list[DataLoader]) -> LoaderStalled:
    """The error of a loader that gave no batch in time; asks the workers of ``loaders`` for their stacks."""
    asked = sum(workers.dump() for workers in _workers(loaders))
    end_workers(loaders)
    stacks = "their stacks are above" if asked else "they did not start"
    timeout = max(loader.timeout for loader in loaders)
    workers = max(loader.num_workers for loader in loaders)
    return LoaderStalled(f"the data loader gave no batch in {timeout:g} s from its {workers} worker processes "
                         f"({stacks}); the last checkpoint is kept. A worker is stuck (its stack says where), or "
                         "one batch takes longer: then raise data.loader_timeout (seconds, 0: no limit)")


def _workers(loaders: list[DataLoader]) -> list[LoaderWorkers]:
    return [loader.worker_init_fn for loader in loaders if isinstance(loader.worker_init_fn, LoaderWorkers)]


def end_workers(loaders: list[DataLoader]) -> None:
    """End the workers of ``loaders`` at once (a run that stops waiting for them)."""
    for workers in _workers(loaders):
        workers.end()
