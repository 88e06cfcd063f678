"""Process-wide settings a run needs, scoped to a block: torch's RNG seeds and its thread count.

Library code uses these instead of setting the values for good, so a caller's random state and
thread count are what they were once the block ends.

The thread count is part of what a run computes: CPU kernels split their sums over the threads,
so 1 and 2 threads give results that differ in the last bits, and training carries the difference
on. A run therefore fixes its count (:func:`resolve_threads`) instead of taking whatever torch's
default is in the environment it starts in (``OMP_NUM_THREADS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

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


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run a block with torch's CPU RNG (and ``device``'s, if CUDA) seeded, and give the caller
    back its own random state afterwards."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def threads(count: int | None) -> Iterator[None]:
    """Run a block with ``count`` torch CPU threads (None: as they are), then restore the count."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
