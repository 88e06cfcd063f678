"""The CPU cores a process may use: what ``auto`` worker and thread counts are made of. Standard
library only, so the training loop's runtime and the benchmarks count cores without starting PyAV."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cores_per_process() -> int:
    """The CPU cores this process may use (:func:`usable_cores`), shared by the processes of this
    node (``LOCAL_WORLD_SIZE``, which torchrun sets); at least 1."""
    return max(1, usable_cores() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
