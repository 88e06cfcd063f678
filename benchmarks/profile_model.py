"""Top ops (torch.profiler self time, ms per step) of LAPS variants side by side.

Usage: python benchmarks/profile_model.py vit_small_patch16_224 base2d,laps [--train] [--num-frames 8]
       [--img-size 224] [--batch-size 1] [--threads 1] [--steps 2] [--top 16] [--device cuda]
Prints a Markdown table: the ops that explain a time ratio of ``laps bench model``. On CUDA the
times are the GPU time of each op's kernels (bf16 autocast, as ``laps bench``)."""

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from laps.bench.contenders import Contender, build
from laps.bench.measure import inference_job, synchronize, train_job


def op_times(contender: Contender, train: bool, steps: int, batch: int, device: torch.device) -> dict[str, float]:
    """Self milliseconds per step of every op (CPU time, or GPU time on CUDA), after a warm-up step."""
    model, clips = build(contender).to(device), contender.clips(batch, device)
    job = train_job(model, clips) if train else inference_job(model, clips)
    job()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            job()
        synchronize(device)
    if device.type == "cuda":
        return {event.key: event.self_device_time_total / 1e3 / steps for event in prof.key_averages()
                if event.self_device_time_total > 0}
    return {event.key: event.self_cpu_time_total / 1e3 / steps for event in prof.key_averages()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbone")
    parser.add_argument("variants", help="comma-separated, e.g. base2d,laps")
    parser.add_argument("--train", action="store_true", help="profile a training step instead of a forward")
    parser.add_argument("--num-frames", dest="frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch-size", dest="batch", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    device = torch.device(args.device)
    times = {v: op_times(Contender(args.backbone, v, args.frames, args.img_size), args.train, args.steps,
                         args.batch, device) for v in variants}
    ops = sorted(set().union(*times.values()), key=lambda op: -max(t.get(op, 0.0) for t in times.values()))
    print("| op | " + " | ".join(f"{v} ms" for v in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for op in ops[: args.top]:
        print(f"| `{op}` | " + " | ".join(f"{times[v].get(op, 0.0):.0f}" for v in variants) + " |")
    print("| total | " + " | ".join(f"{sum(times[v].values()):.0f}" for v in variants) + " |")
