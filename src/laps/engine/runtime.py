"""The thread count of a training run (the blocks that set it, and torch's seeds, are
:mod:`laps.infer.runtime`'s).

The thread count is part of what a run computes: CPU kernels split their sums over the threads,
so 1 and 2 threads give results that differ in the last bits, and training carries the difference
on. A run therefore fixes its count (:func:`resolve_threads`) instead of taking whatever torch's
default is in the environment it starts in (``OMP_NUM_THREADS``).
"""

from __future__ import annotations

from pathlib import Path

from laps.data.cores import cores_per_process
from laps.engine.config import load_config


def resolve_threads(threads: int | str, resumed_config: Path | None = None) -> int:
    """``runtime.threads`` as a count. An integer as it is. ``"auto"``: the count the run being
    resumed started with (the ``runtime.threads`` of its ``resumed_config``, config.yaml), else the
    CPU cores this process may use (its affinity), shared by the processes of this node
    (``LOCAL_WORLD_SIZE``, which torchrun sets); never ``OMP_NUM_THREADS`` or the load."""
    if threads == "auto" and resumed_config is not None and resumed_config.is_file():
        threads = load_config(resumed_config).runtime.threads
    if threads == "auto":
        return cores_per_process()
    return threads
