"""``laps eval``: multi-view evaluation of a trained model on an annotation file."""

from __future__ import annotations

import argparse
from pathlib import Path

from laps.cli.common import CHECKPOINT_HELP, add_command, add_device_flag, pinned_threads, workers
from laps.cli.zero_shot_flags import add_zero_shot_flags, load_classifier

EVAL_EXAMPLES = """examples:
  laps eval --checkpoint runs/demo/laps --data-root runs/demo/data --list val.txt --views 10x3 --output runs/demo/laps/eval
  laps eval --checkpoint runs/mine/last.safetensors --data-root data/k400 --list val.csv --views 1x3
  laps eval --checkpoint someone/laps-k400 --data-root data/k400 --list val.csv --output eval_k400
  laps eval --checkpoint local-dir:clip_b16 --labels classes.txt --data-root data/ucf101 --list test.txt --output zs  # zero-shot
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "eval", "multi-view evaluation of a checkpoint", None, EVAL_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--data-root", default="", help="folder the list's video paths are relative to")
    p.add_argument("--list", required=True,
                   help="annotation file of the videos to evaluate: a path as given, else under --data-root")
    p.add_argument("--format", default="auto", help="annotation format (default: detect)")
    p.add_argument("--views", default="1x1", help="temporal clips x spatial crops, e.g. 10x3 (default 1x1)")
    p.add_argument("--output", default=None, help="folder for eval.json, confusion matrix, predictions")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=workers, default="auto",
                   help="loader processes, or 'auto': this process's CPU cores (default: auto)")
    add_device_flag(p)
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    add_zero_shot_flags(p)
    p.set_defaults(func=pinned_threads(run_eval))


def _eval_output(args: argparse.Namespace) -> Path:
    """--output, else ``eval/`` in the checkpoint's folder (a Hub id has none: --output is needed)."""
    from laps.errors import ConfigError

    if args.output:
        return Path(args.output)
    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists():
        raise ConfigError(f"pass --output DIR: {args.checkpoint} is not a local folder to write eval/ into")
    return (checkpoint if checkpoint.is_dir() else checkpoint.parent) / "eval"


def run_eval(args: argparse.Namespace) -> int:
    from laps.data.annotations import find_file
    from laps.serve.inference import evaluate_checkpoint

    listing = find_file(args.list, args.data_root, "--list")
    model = load_classifier(args)
    out = _eval_output(args)
    root = args.data_root or str(listing.parent)
    summary = evaluate_checkpoint(model, listing, root, out, args.views, args.format, args.batch_size,
                                  args.workers, args.amp)
    print(f"top1 {100 * summary['top1']:.2f}%  top5 {100 * summary['top5']:.2f}%  "
          f"mean class {100 * summary['mean_class_acc']:.2f}%  ({summary['num_videos']} videos, {args.views} views) -> {out}")
    return 0
