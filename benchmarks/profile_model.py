"""Top ops (torch.profiler self CPU time, ms per step) of LAPS variants side by side.

Usage: python benchmarks/profile_model.py vit_small_patch16_224 base2d,laps [--train] [--frames 8]
       [--img-size 224] [--threads 1] [--steps 2] [--top 16]
Prints a Markdown table: the ops that explain a time ratio of ``laps bench model``."""

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from laps.analysis.contenders import Contender, build
from laps.analysis.measure import inference_job, train_job


def op_times(contender: Contender, train: bool, steps: int) -> dict[str, float]:
    """Self CPU milliseconds per step of every op, after one warm-up step."""
    model, clips = build(contender), contender.clips(1)
    job = train_job(model, clips) if train else inference_job(model, clips)
    job()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            job()
    return {event.key: event.self_cpu_time_total / 1e3 / steps for event in prof.key_averages()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbone")
    parser.add_argument("variants", help="comma-separated, e.g. base2d,laps")
    parser.add_argument("--train", action="store_true", help="profile a training step instead of a forward")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    times = {v: op_times(Contender(args.backbone, v, args.frames, args.img_size), args.train, args.steps)
             for v in variants}
    ops = sorted(set().union(*times.values()), key=lambda op: -max(t.get(op, 0.0) for t in times.values()))
    print("| op | " + " | ".join(f"{v} ms" for v in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for op in ops[: args.top]:
        print(f"| `{op}` | " + " | ".join(f"{times[v].get(op, 0.0):.0f}" for v in variants) + " |")
    print("| total | " + " | ".join(f"{sum(times[v].values()):.0f}" for v in variants) + " |")
