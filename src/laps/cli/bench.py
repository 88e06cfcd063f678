"""``laps bench model|data|all``: the model benchmark (:mod:`laps.bench.model`) and the data
pipeline benchmark (``laps.bench.data``)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Collection
from pathlib import Path

from laps.bench.options import BACKBONES, DEFAULT_VARIANTS, METRICS, PEERS, BenchOptions
from laps.cli.common import add_command, add_device_flag
from laps.errors import ConfigError
from laps.variants import VARIANTS

EXAMPLES = """examples:
  laps bench model --quick --output bench.json
  laps bench model --backbones vit_small_patch16_224 --variants base2d,ps,la,laps,joint --batch-size 2
  laps bench model --backbones vit_base_patch16_224 --variants base2d,laps --peers timesformer,videomae
  laps bench model --backbones vit_small_patch16_224 --variants base2d,laps,joint \\
      --num-frames 8,16,32,64 --metrics latency,memory --batch-size 1 --repeats 3 --plot frames.png
  laps bench data --quick
"""


def _names(choices: Collection[str] | None = None):
    """argparse type: a comma-separated list, each item checked against ``choices``."""

    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        bad = [item for item in items if choices is not None and item not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(choices or ())}, got {text!r}")
        return items

    return parse


def _counts(what: str, example: str):
    """argparse type: a comma-separated list of integers >= 1."""

    def parse(text: str) -> list[int]:
        try:
            counts = [int(item) for item in text.split(",")]
        except ValueError:
            counts = []
        if not counts or min(counts) < 1:
            raise argparse.ArgumentTypeError(f"expected {what} like {example}, got {text!r}")
        return counts

    return parse


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers, "bench", "benchmark models (speed, memory, FLOPs vs base2d and peers) or the data pipeline",
        "Benchmark LAPS models side by side (every variant of a backbone interleaved in one run, warm-up "
        "excluded, medians of repeats) or the data pipeline. The model table prints params in millions, "
        "GFLOPs per clip, latency in ms (B=1), throughput in clips/s, the train step in ms and the peak "
        "train memory in MiB; beside each value, its ratio to base2d's value in the same run (value / "
        "base2d's value; peers: to the LAPS row).", EXAMPLES)
    p.add_argument("what", choices=("model", "data", "all"), help="which benchmark to run")
    p.add_argument("--backbones", type=_names(), default=",".join(BACKBONES),
                   help="comma-separated timm backbones (default: %(default)s)")
    p.add_argument("--variants", type=_names(VARIANTS), default=",".join(DEFAULT_VARIANTS),
                   help=f"comma-separated temporal variants, of {', '.join(VARIANTS)} (default: %(default)s)")
    p.add_argument("--num-frames", type=_counts("frame counts", "8 or 8,16,32,64"), default="8",
               help="frames per clip, or a sweep like 8,16,32,64")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=4, help="batch of the throughput and training measurements")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up (the table prints their medians)")
    p.add_argument("--metrics", type=_names(METRICS), default=",".join(METRICS), help="subset of %(default)s")
    p.add_argument("--peers", type=_names(tuple(PEERS)), default=[],
                   help=f"Hugging Face peers measured with LAPS-ViT-B/16 ({', '.join(PEERS)}; needs transformers)")
    add_device_flag(p)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--workers", type=_counts("worker counts", "1 or 1,2,4"), default=None,
                   help="data: loader worker counts to sweep, e.g. 1,2,4 (default: 1 and every core)")
    p.add_argument("--compile", action="store_true", help="torch.compile every model")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="time inference as the replay of a captured CUDA graph (no launch overhead; needs cuda)")
    p.add_argument("--quick", action="store_true",
                   help="vit_tiny, 4 frames at 32 px, batch 2, 2 repeats: a smoke test")
    p.add_argument("--output", metavar="PATH", help="write the results as JSON to PATH")
    p.add_argument("--plot", metavar="PATH", help="with a --num-frames sweep: PNG of time and memory vs T")
    p.set_defaults(func=run_bench)


def _options(args: argparse.Namespace) -> BenchOptions:
    from laps.infer.device import resolve_device

    chosen = {"variants": args.variants, "metrics": args.metrics, "peers": args.peers,
              "device": str(resolve_device(args.device)), "compile": args.compile, "cuda_graphs": args.cuda_graphs}
    if args.quick:
        return BenchOptions.quick(**chosen)
    return BenchOptions(backbones=args.backbones, frames=args.num_frames, img_size=args.img_size,
                        batch=args.batch_size, repeats=args.repeats, **chosen)


def _model(args: argparse.Namespace) -> dict:
    from laps.bench.model import format_table, plot_frames_sweep, run_model_bench

    options = _options(args)
    if args.cuda_graphs and not options.device.startswith("cuda"):
        raise ConfigError("--cuda-graphs needs --device cuda (CUDA graphs replay GPU work only)")
    result = run_model_bench(options, command=shlex.join(sys.argv))
    print(format_table(result))
    if args.plot:
        plot_frames_sweep(result, args.plot)
        print(f"plot written to {args.plot}")
    return result


def _data(args: argparse.Namespace) -> dict:
    from laps.bench.data import run_data_bench

    return run_data_bench(quick=args.quick, workers=args.workers)


def run_bench(args: argparse.Namespace) -> int:
    from laps.infer.runtime import threads

    results = {}
    with threads(args.threads):
        if args.what in ("model", "all"):
            results["model"] = _model(args)
        if args.what in ("data", "all"):
            results["data"] = _data(args)
    if args.output:
        payload = results if args.what == "all" else next(iter(results.values()))
        Path(args.output).write_text(json.dumps(payload, indent=2) + "\n")
    return 0
