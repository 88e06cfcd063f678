"""Data-pipeline benchmark: clips/s of 8x8 dense sampling + train transforms to 224, one core.

The laps pipeline (:class:`~laps.data.VideoDataset`: key-frame seek, decode only the
window, skip unneeded non-reference frames) runs in the main process next to a naive
decoder that decodes and converts every frame, then picks the clip. Both use the same
sampler and transforms, on generated 340x256 H.264 files (10 s at 30 fps, crf 23)
with x264's default key-frame interval (250), a 1 s interval (30), and the first file
prepared by ``laps data resize`` (by default and with ``--compact``). A last table gives the
clips/s of the loader (:func:`~laps.data.build_loader`) on the default prepared file with 1, 2,
... worker processes.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch

from laps.data.annotations import VideoRecord
from laps.data.cores import usable_cores
from laps.data.dataset import VideoDataset, build_loader
from laps.data.encoding import write_video
from laps.data.reformat import to_rgb
from laps.data.resize import KEYFRAME_INTERVAL, resize_video
from laps.data.sampling import dense_indices
from laps.infer.runtime import threads

NUM_FRAMES, RATE, IMG_SIZE = 8, 8, 224
KEYFRAME_INTERVALS = (250, 30)  # x264 default; 1 s


def bench_frames(seconds: float, width: int, height: int, fps: int, seed: int = 0) -> np.ndarray:
    """Camera-like test content -> uint8 (T, H, W, 3): a drifting textured scene, a moving block, sensor noise."""
    rng = np.random.default_rng(seed)
    num = round(seconds * fps)
    texture = np.kron(rng.uniform(0, 255, (height // 8 + 8, width // 8 + 8)), np.ones((8, 8)))
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((num, height, width, 3), dtype=np.uint8)
    for t in range(num):
        shift = (2 * t) % 32
        scene = np.stack([texture[shift // 2:shift // 2 + height, shift:shift + width],
                          128 + 100 * np.sin((x + 4 * t) / 20) * np.cos(y / 30),
                          (y + 2 * t) % 256], axis=-1)
        cx, cy = int(width / 2 + width / 3 * np.sin(t / 20)), int(height / 2 + height / 3 * np.cos(t / 15))
        scene[max(cy - 30, 0):cy + 30, max(cx - 30, 0):cx + 30] = (255, 200, 0)
        frames[t] = np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255)
    return frames


def naive_clip(path: str, dataset: VideoDataset, rng: np.random.Generator) -> torch.Tensor:
    """Decode and convert every frame, pick a dense clip, same transforms -> (T, C, H, W)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        frames = [to_rgb(frame) for frame in container.decode(stream)]
    indices = dense_indices(len(frames), dataset.num_frames, dataset.sampling_rate, train=True, rng=rng)
    return dataset.transform(np.stack([frames[i] for i in indices]), rng)


def clips_per_second(make_clip: Callable[[], object], clips: int) -> tuple[float, float]:
    """(clips per second of process CPU time, clips per wall-clock second) after one warm-up call.

    All work runs in this process on one thread, so the CPU-time rate is what one core
    delivers even when other processes share the machine; the wall rate shows that sharing.
    """
    make_clip()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(clips):
        make_clip()
    return clips / (time.process_time() - cpu), clips / (time.perf_counter() - wall)


def bench_file(path: str, laps_clips: int, naive_clips: int) -> dict[str, float]:
    """laps and naive clips/s (CPU time and wall clock) for one video file."""
    dataset = VideoDataset([VideoRecord(path, 0)], "", NUM_FRAMES, RATE, train=True, img_size=IMG_SIZE)
    rng = np.random.default_rng(0)
    ours, ours_wall = clips_per_second(lambda: dataset[0], laps_clips)
    naive, naive_wall = clips_per_second(lambda: naive_clip(path, dataset, rng), naive_clips)
    return {"laps_clips_per_s": ours, "naive_clips_per_s": naive, "speedup": ours / naive,
            "laps_wall_clips_per_s": ours_wall, "naive_wall_clips_per_s": naive_wall}


def loader_clips_per_second(path: str, workers: int, batches: int, batch_size: int = 8) -> float:
    """Wall-clock clips/s of :func:`build_loader` with ``workers`` processes over copies of one
    file, worker start-up included (batches that a worker prefetches while the first one is
    awaited would make a rate timed from the first batch on too high)."""
    records = [VideoRecord(path, 0)] * (batches * batch_size)
    dataset = VideoDataset(records, "", NUM_FRAMES, RATE, train=True, img_size=IMG_SIZE)
    began = time.perf_counter()
    clips = sum(batch.shape[0] for batch, _ in build_loader(dataset, batch_size, train=True, num_workers=workers))
    return clips / (time.perf_counter() - began)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _measure(seconds: int, size: tuple[int, int], fps: int, clips: tuple[int, int], batches: int,
             workers: list[int]) -> tuple[list[dict], list[dict]]:
    """Write the benchmark files, measure each (laps and naive clips) and the loader on the prepared
    one -> (file rows, loader rows)."""
    frames = bench_frames(seconds, *size, fps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for gop in KEYFRAME_INTERVALS:
            files.append((str(Path(tmp) / f"bench_gop{gop}.mp4"), gop, False))
            write_video(files[-1][0], frames, fps, crf=23, gop=gop)
        for fast_decode in (True, False):
            files.append((str(Path(tmp) / f"prepared_{fast_decode}.mp4"), KEYFRAME_INTERVAL,
                          "resized" if fast_decode else "resized --compact"))
            resize_video(files[0][0], files[-1][0], keyframe_interval=KEYFRAME_INTERVAL, fast_decode=fast_decode)
        for path, gop, resized in files:
            rows.append({"keyframe_interval": gop, "prepared": resized,
                         "kbit_per_s": os.path.getsize(path) * 8 / seconds / 1000, **bench_file(path, *clips)})
        prepared = files[-2][0]
        scaling = [{"workers": w, "clips_per_s": loader_clips_per_second(prepared, w, batches)} for w in workers]
    return rows, scaling


def run_data_bench(quick: bool = False, json_path: str | os.PathLike | None = None,
                   workers: list[int] | None = None) -> dict:
    """Measure and print laps vs naive clips/s for each key-frame interval and the prepared file,
    then the loader's clips/s for each count of ``workers`` (default: 1 and every core) -> results dict.

    ``quick``: a 2 s 128x96 video and a few clips (seconds; a smoke test, not a measurement).
    """
    seconds, width, height, fps = (2, 128, 96, 30) if quick else (10, 340, 256, 30)
    laps_clips, naive_clips, batches = (3, 1, 2) if quick else (60, 6, 24)
    workers = workers or sorted({1, usable_cores()})
    with threads(1):
        rows, scaling = _measure(seconds, (width, height), fps, (laps_clips, naive_clips), batches, workers)
    result = {
        "benchmark": "data",
        "clip": f"{NUM_FRAMES}x{RATE} dense, train transforms to {IMG_SIZE}",
        "video": f"{seconds} s {width}x{height} H.264 {fps} fps crf 23",
        "threads": 1,
        "quick": quick,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores",
        "load_average_1min": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "loader_workers": scaling,
    }
    print(format_table(result))
    if json_path is not None:
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
    return result


def format_table(result: dict) -> str:
    """A plain-text table of a :func:`run_data_bench` result."""
    lines = [f"data pipeline: {result['clip']}, {result['video']}, 1 thread",
             f"{result['machine']}, load average {result['load_average_1min']:.1f}; "
             "clips/s per CPU-second of this process (wall clock in brackets)",
             f"{'key-frame interval':>26} {'kbit/s':>7} {'laps clips/s':>18} {'naive clips/s':>16} {'speedup':>8}"]
    for row in result["rows"]:
        laps = f"{row['laps_clips_per_s']:.1f} ({row['laps_wall_clips_per_s']:.1f})"
        naive = f"{row['naive_clips_per_s']:.2f} ({row['naive_wall_clips_per_s']:.2f})"
        interval = f"{row['keyframe_interval']} ({row['prepared']})" if row.get("prepared") else str(row["keyframe_interval"])
        lines.append(f"{interval:>26} {row['kbit_per_s']:>7.0f} {laps:>18} {naive:>16} {row['speedup']:>7.1f}x")
    scaling = result.get("loader_workers", [])
    if scaling:
        one = scaling[0]["clips_per_s"] / scaling[0]["workers"]
        lines.append("loader on the resized file, batch 8 (wall clock, worker start-up included):")
        lines += [f"{s['workers']:>5} worker(s) {s['clips_per_s']:8.1f} clips/s  ({s['clips_per_s'] / (one * s['workers']):.2f}"
                  " x workers x the 1-worker rate)" for s in scaling]
    return "\n".join(lines)
