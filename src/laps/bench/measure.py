"""Timing and peak-memory measurements of ``laps bench model``.

Times: every job runs once as a warm-up, then ``repeats`` rounds, each round running every job
once in turn (interleaved, so load that comes and goes on a shared machine hits all jobs alike).

Peak memory of a training step is measured in a fresh child process per group of contenders
(``python -m laps.bench.measure``): on CPU the peak resident set size (``VmHWM`` of
``/proc/self/status``, reset before each step) above the resident size of the built model, with
glibc's ``malloc`` told to return freed tensors to the system at once; on CUDA the peak of
``torch.cuda.max_memory_allocated`` above the memory allocated before the step.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from laps.bench.contenders import NUM_CLASSES, Contender, build
from laps.errors import LapsError
from laps.infer.runtime import threads

_MIB = 2**20


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, full precision elsewhere."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def inference_job(model: nn.Module, clips: torch.Tensor, cuda_graph: bool = False) -> Callable[[], None]:
    """One forward of ``model`` (eval mode, inference mode) on ``clips``; with ``cuda_graph``, the
    replay of a CUDA graph captured from it (no per-kernel launch cost: what a server would run)."""
    model.eval()

    def run() -> None:
        with torch.inference_mode(), autocast(clips.device):
            model(clips)

    if not cuda_graph:
        return run
    if clips.device.type != "cuda":
        raise LapsError("CUDA graphs need a CUDA device; drop --cuda-graphs or use --device cuda")
    side = torch.cuda.Stream(clips.device)
    side.wait_stream(torch.cuda.current_stream(clips.device))
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up outside the capture: cuDNN/cuBLAS plans, allocator pools
            run()
    torch.cuda.current_stream(clips.device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph.replay


def train_job(model: nn.Module, clips: torch.Tensor) -> Callable[[], None]:
    """One training step on ``clips``: forward, cross-entropy, backward, SGD (momentum 0.9) step."""
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    labels = torch.randint(NUM_CLASSES, (clips.shape[0],), device=clips.device)

    def run() -> None:
        with autocast(clips.device):
            loss = nn.functional.cross_entropy(model(clips), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def time_interleaved(
    jobs: dict[str, Callable[[], None]], repeats: int, device: torch.device
) -> dict[str, list[float]]:
    """Seconds per call of every job in each of ``repeats`` interleaved rounds (warm-up excluded)."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for job in jobs.values():
        job()
    for _ in range(repeats):
        for name, job in jobs.items():
            synchronize(device)
            start = time.perf_counter()
            job()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times


# --- peak memory, in a child process ---------------------------------------------------------


def peak_train_memory(
    contenders: list[Contender], batch: int, device: torch.device, compile_model: bool = False
) -> list[float]:
    """Peak memory (MiB) of one training step of each contender above its built model."""
    spec = {
        "contenders": [c.to_dict() for c in contenders], "batch": batch, "device": str(device),
        "threads": torch.get_num_threads(), "compile": compile_model,
    }
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "laps.bench.measure"], input=json.dumps(spec),
        capture_output=True, text=True, env=env, check=False,
    )
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise LapsError(f"the peak-memory child process failed (exit {result.returncode}): {tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _status_mib(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1)) / 1024


def _peak_mib(step: Callable[[], None], device: torch.device) -> float:
    """Peak memory (MiB) while ``step`` runs, above the memory in use when it starts."""
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        step()
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - start) / _MIB
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    start = _status_mib("VmRSS")
    step()
    return _status_mib("VmHWM") - start


def _child_peak(contender: Contender, batch: int, device: torch.device, compile_model: bool) -> float:
    """Build the model, warm the libraries up with one inference forward at B=1, then measure
    the first training step at ``batch`` (it allocates the gradients and momentum buffers)."""
    model = build(contender).to(device)
    if compile_model:
        model = torch.compile(model)
    inference_job(model, contender.clips(1, device))()
    return _peak_mib(train_job(model, contender.clips(batch, device)), device)


def _child_main() -> None:
    spec = json.loads(sys.stdin.read())
    device = torch.device(spec["device"])
    contenders = [Contender(**c) for c in spec["contenders"]]
    with threads(spec["threads"]):
        # one-time allocations of the libraries, outside every measurement: a training step of the
        # first contender (a LAPS model: peers come last in a group) on a one-frame clip
        warm_up = replace(contenders[0], frames=1)
        train_job(build(warm_up).to(device), warm_up.clips(1, device))()
        peaks = [_child_peak(c, spec["batch"], device, spec["compile"]) for c in contenders]
    print(json.dumps(peaks))


if __name__ == "__main__":
    _child_main()
