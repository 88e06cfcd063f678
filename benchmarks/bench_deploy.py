"""Deployment measurements, side by side in one run: ONNX Runtime (CPU) vs eager PyTorch latency of an
exported LAPS model, and `laps predict --timeline` clips/s vs `laps eval` on the same model and footage.

Usage: python benchmarks/bench_deploy.py [--threads 2] [--rounds 10] [--models vit_small_patch16_224,visformer_small]
Prints a JSON report (docs/deploy.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

import laps
from laps.export import example_clips, export


def latency(models: list[str], threads: int, rounds: int, frames: int, size: int) -> list[dict]:
    """Median seconds per batch-1 clip: eager PyTorch and ONNX Runtime, interleaved rounds."""
    torch.set_num_threads(threads)
    rows = []
    for name in models:
        model = laps.create_model(name, temporal="laps", num_frames=frames, num_classes=400, img_size=size).eval()
        with tempfile.TemporaryDirectory() as folder:
            path = export(model, Path(folder) / "model.onnx")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            clip = example_clips(model, 1)
            feed = {"clips": clip.numpy()}
            times = {"eager": [], "onnxruntime": []}
            with torch.no_grad():
                model(clip)
                session.run(None, feed)  # warm-up
                for _ in range(rounds):
                    began = time.perf_counter()
                    model(clip)
                    times["eager"].append(time.perf_counter() - began)
                    began = time.perf_counter()
                    session.run(None, feed)
                    times["onnxruntime"].append(time.perf_counter() - began)
        eager, ort = statistics.median(times["eager"]), statistics.median(times["onnxruntime"])
        rows.append({"model": f"LAPS {name} {frames}x{size}", "threads": threads, "eager_ms": 1000 * eager,
                     "onnxruntime_ms": 1000 * ort, "onnxruntime_speedup": eager / ort})
    return rows


def timeline_vs_eval(threads: int, seconds: int = 120) -> dict:
    """clips/s of a timeline over one long video vs evaluation of the same clips as separate files."""
    from laps.data.encoding import write_video
    from laps.data.synthetic import make_synthetic, synthetic_clip
    import laps
    from laps.serve.inference import evaluate_checkpoint, model_timeline
    from laps.engine.runtime import threads as scoped_threads
    from laps.serve.timeline import open_stream
    from laps.engine.trainer import train
    from laps.engine.config import load_config

    fps, window = 8, 2
    with tempfile.TemporaryDirectory() as folder, scoped_threads(threads):
        root = Path(folder)
        data = make_synthetic(root / "data", videos_per_class=2, seed=0, num_frames=16, size=64)
        config = load_config(None, {"model.img_size": 64, "model.patch_size": 16, "model.depth": 4, "model.num_frames": 8,
                                    "data.root": str(data), "data.train_list": "train.txt", "data.sampling_rate": 2,
                                    "data.num_workers": 0, "optim.epochs": 1, "runtime.output": str(root / "run"),
                                    "runtime.progress": False})
        train(config)
        model = laps.from_pretrained(root / "run")
        frames = np.concatenate([synthetic_clip(k % 10, seed=k, num_frames=window * fps, size=64)
                                 for k in range(seconds // window)])
        write_video(root / "long.mp4", frames, fps=fps)
        clips_dir = root / "clips"
        clips_dir.mkdir()
        lines = []
        for k in range(seconds - window + 1):  # the timeline's windows (stride 1 s) as files
            write_video(clips_dir / f"{k:04d}.mp4", frames[k * fps:(k + window) * fps], fps=fps)
            lines.append(f"clips/{k:04d}.mp4 0")
        (root / "clips.txt").write_text("\n".join(lines) + "\n")
        began = time.perf_counter()
        with open_stream(str(root / "long.mp4")) as container:
            timeline = model_timeline(model, container, window=window, stride=1.0, batch_size=8, progress=False)
        timeline_rate = len(timeline.starts) / (time.perf_counter() - began)
        began = time.perf_counter()
        evaluate_checkpoint(model, root / "clips.txt", root, root / "eval", batch_size=8, num_workers=0, progress=False)
        eval_rate = len(lines) / (time.perf_counter() - began)
    return {"video_s": seconds, "clips": len(lines), "timeline_clips_per_s": timeline_rate,
            "eval_clips_per_s": eval_rate, "timeline_over_eval": timeline_rate / eval_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--models", default="vit_small_patch16_224,visformer_small")
    args = parser.parse_args()
    report = {"latency": latency(args.models.split(","), args.threads, args.rounds, 8, 224),
              "timeline": timeline_vs_eval(args.threads),
              "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
