"""Process-wide settings a run needs, scoped to a block: torch's RNG seeds and its thread count.

Library code uses these instead of setting the values for good, so a caller's random state and
thread count are what they were once the block ends. Training, evaluation, prediction and feature
extraction all run with a fixed thread count (the cores this process may use, unless told), so a
result does not depend on ``OMP_NUM_THREADS`` or torch's default where the command starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


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
