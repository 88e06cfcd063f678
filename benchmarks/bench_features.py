"""`laps features` on this CPU: videos/s (clip mode, 1x3 views) and windows/s (window mode) for an
image model run frame by frame (base2d) and a LAPS model, with the share of the time spent decoding.

Usage: python benchmarks/bench_features.py [--threads 1] [--videos 8] [--seconds 8] [--size 112]
Prints a JSON report (BENCHMARKS.md quotes it). Random weights: the speed does not depend on them.
Everything runs in one process (``num_workers=0``), so rates are also given per CPU-second of it. The
decoding share is the CPU time of iterating the loader alone (decoding, resizing, cropping) over
that of the whole extraction.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import laps
from laps.data.encoding import write_video
from laps.data.synthetic import synthetic_clip
from laps.engine.runtime import threads as scoped_threads
from laps.models.sharing import model_config
from laps.serve.feature_inputs import FeatureInput
from laps.serve.features import feature_loader, iter_features

FPS = 25


def make_videos(folder: Path, count: int, seconds: int) -> list[str]:
    """``count`` videos of ``seconds`` s, 320x240 at :data:`FPS` frames a second (x264 defaults)."""
    paths = []
    for k in range(count):
        frames = synthetic_clip(k % 10, seed=k, num_frames=seconds * FPS, size=320)[:, 40:280]
        path = folder / f"video_{k:02d}.mp4"
        write_video(path, np.ascontiguousarray(frames), fps=FPS)
        paths.append(str(path))
    return paths


def measure(model, paths: list[str], mode: dict, batch_size: int) -> dict:
    """Videos and clips (views or windows) per second of the whole extraction, wall clock and CPU time
    of this process (everything runs in it: other jobs on the machine do not count), and the share
    of that CPU time that decoding alone takes."""
    inputs = [FeatureInput(path, Path(path).with_suffix(".npy").name) for path in paths]
    for _ in iter_features(model, inputs[:1], batch_size=batch_size, **mode):  # warm-up, not counted
        pass
    cpu = time.process_time()
    clips = sum(len(tags) for tags, _ in feature_loader(model, inputs, batch_size=batch_size, **mode))
    decode_cpu_s = time.process_time() - cpu
    began, cpu = time.perf_counter(), time.process_time()
    done = sum(1 for _ in iter_features(model, inputs, batch_size=batch_size, num_workers=0, **mode))
    wall_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu
    return {"videos": done, "clips": clips, "wall_s": wall_s, "cpu_s": cpu_s, "videos_per_s": done / wall_s,
            "clips_per_s": clips / wall_s, "videos_per_cpu_s": done / cpu_s, "clips_per_cpu_s": clips / cpu_s,
            "decode_share": decode_cpu_s / cpu_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--backbone", default="vit_tiny_patch16_224")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    modes = {"clip 1x3": {"views": "1x3"}, "window 2 s, stride 1 s": {"window": 2.0, "stride": 1.0}}
    rows = []
    with tempfile.TemporaryDirectory() as folder, scoped_threads(args.threads):
        paths = make_videos(Path(folder), args.videos, args.seconds)
        for temporal in ("base2d", "laps"):
            torch.manual_seed(0)
            model = laps.create_model(args.backbone, temporal=temporal, num_frames=args.num_frames,
                                      img_size=args.size).eval()
            model.shared_config = model_config(model, sampling_rate=8)
            for mode, options in modes.items():
                rows.append({"model": f"{temporal} {args.backbone} {args.num_frames}x{args.size}", "mode": mode,
                             **measure(model, paths, options, args.batch_size)})
    print(json.dumps({"videos": args.videos, "seconds_each": args.seconds, "threads": args.threads,
                      "torch": torch.__version__, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
