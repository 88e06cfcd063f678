"""Engine subcommands: ``laps train``, ``laps eval``, ``laps predict``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from laps.cli import add_command, add_option, workers
from laps.cli.timeline_flags import add_timeline_flags, check_timeline_flags

TRAIN_EXAMPLES = """examples:
  laps train --config configs/demo.yaml --output runs/mine
  laps train --data-root data/k400 --train-list train.csv --val-list val.csv \\
      --model visformer_small --temporal laps --num-frames 8 --epochs 18 --lr 0.2
  laps train --config configs/demo.yaml optim.warmup_epochs=2 data.flip=false
  torchrun --nproc_per_node 4 -m laps train --config configs/k400_visformer_s_laps.yaml
  laps train --config configs/demo.yaml --output runs/mine --resume
"""
EVAL_EXAMPLES = """examples:
  laps eval --checkpoint runs/demo/laps --data-root runs/demo/data --list val.txt --views 10x3 --output runs/demo/laps/eval
  laps eval --checkpoint runs/mine/last.safetensors --data-root data/k400 --list val.csv --views 1x3
  laps eval --checkpoint someone/laps-k400 --data-root data/k400 --list val.csv --output eval_k400
"""
PREDICT_EXAMPLES = """examples:
  laps predict --checkpoint runs/demo/laps video1.mp4 video2.mp4
  laps predict --checkpoint shared_model --json --top-k 3 my_videos/     # a save_pretrained folder
  laps predict --checkpoint someone/laps-k400 video1.mp4                 # a Hugging Face Hub id
  laps predict --checkpoint runs/mine my_videos/ --output predictions.jsonl   # streamed, one line per video
  laps predict --checkpoint runs/mine long.mp4 --timeline --window 2 --stride 1 --output long_timeline/
  laps predict --checkpoint runs/mine long.mp4 --timeline --switch 8 --truth long_segments.csv --output long_timeline/
  ffmpeg -i rtsp://camera/stream -f mpegts - | laps predict --checkpoint runs/mine - --timeline --output cam/
"""

CHECKPOINT_HELP = ("a run directory (its best weights), a save_pretrained folder, a .safetensors weights file or "
                   "a Hugging Face Hub id user/name")

#: CLI flag -> config key
TRAIN_FLAGS = {
    "data_root": "data.root", "train_list": "data.train_list", "val_list": "data.val_list",
    "model": "model.backbone", "temporal": "model.temporal", "num_frames": "model.num_frames",
    "sampling_rate": "data.sampling_rate", "img_size": "model.img_size", "epochs": "optim.epochs",
    "batch_size": "optim.batch_size", "lr": "optim.lr", "output": "runtime.output", "seed": "runtime.seed",
    "amp": "runtime.amp", "device": "runtime.device", "workers": "data.num_workers",
}


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    add_demo_parser(subparsers)
    p = add_command(subparsers, "train", "train a video model", None, TRAIN_EXAMPLES)
    p.add_argument("--config", help="YAML config (sections model/data/optim/runtime)")
    for flag in TRAIN_FLAGS:
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, help=f"sets {TRAIN_FLAGS[flag]}")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--resume", action="store_true",
                      help="continue the run in --output from its last checkpoint (mid-epoch after SIGTERM / SIGUSR1)")
    runs.add_argument("--overwrite", action="store_true",
                      help="replace a run found in --output (without it, such a directory is refused)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="any config key, e.g. optim.weight_decay=0")
    p.set_defaults(func=run_train)

    p = add_command(subparsers, "eval", "multi-view evaluation of a checkpoint", None, EVAL_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--data-root", default="", help="folder the list's video paths are relative to")
    p.add_argument("--list", required=True, help="annotation file of the videos to evaluate")
    p.add_argument("--format", default="auto", help="annotation format (default: detect)")
    p.add_argument("--views", default="1x1", help="temporal clips x spatial crops, e.g. 10x3 (default 1x1)")
    p.add_argument("--output", default=None, help="folder for eval.json, confusion matrix, predictions")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--workers", type=workers, default="auto",
                   help="loader processes, or 'auto': this process's CPU cores (default: auto)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    p.set_defaults(func=run_eval)

    p = add_command(subparsers, "predict", "classify video files", None, PREDICT_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--views", default="1x3", help="temporal clips x spatial crops (default 1x3)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--output", default=None, metavar="FILE.jsonl",
                   help="write one JSON line per video as it is classified, into FILE.jsonl.partial, renamed to "
                        "FILE.jsonl once every video is done (with --timeline: the output folder)")
    p.add_argument("--device", default="auto")
    timeline = p.add_argument_group("timeline of one long video or stream (--timeline)")
    timeline.add_argument("--timeline", action="store_true",
                          help="label one video (a path, a URL PyAV opens, or - for stdin) over time: writes "
                               "timeline.json, timeline.csv and timeline.png into --output DIR")
    add_timeline_flags(timeline)
    timeline.add_argument("--truth", default=None, metavar="SEGMENTS.csv",
                          help="true segments (CSV with header start,end,label): drawn in the PNG with the boundary error")
    timeline.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")
    p.set_defaults(func=run_predict)


def run_train(args: argparse.Namespace) -> int:
    from laps.engine.config import load_config, parse_overrides
    from laps.engine.trainer import train

    flags = {key: getattr(args, flag) for flag, key in TRAIN_FLAGS.items()}
    config = load_config(args.config, {**flags, **parse_overrides(args.overrides)})
    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary:
        print(json.dumps(summary, indent=2))
    return 0


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
    from laps.engine.inference import evaluate_checkpoint, load_model

    model = load_model(args.checkpoint, args.device)
    out = _eval_output(args)
    root = args.data_root or str(Path(args.list).parent)
    summary = evaluate_checkpoint(model, args.list, root, out, args.views, args.format, args.batch_size,
                                  args.workers, args.amp)
    print(f"top1 {100 * summary['top1']:.2f}%  top5 {100 * summary['top5']:.2f}%  "
          f"mean class {100 * summary['mean_class_acc']:.2f}%  ({summary['num_videos']} videos, {args.views} views) -> {out}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from laps.engine.inference import expand_videos, format_prediction, iter_predictions, load_model

    model = load_model(args.checkpoint, args.device)
    if args.timeline:
        return run_timeline(args, model)
    paths = expand_videos(args.videos)
    results, errors = [], 0
    with PredictionLog(args.output) as log:
        for item in tqdm(iter_predictions(model, paths, args.views, args.top_k), total=len(paths), unit="video",
                         desc="predict", disable=len(paths) < 2, leave=False):
            errors += "error" in item
            log.write(item)
            if args.json:
                results.append(item)
            elif not args.output or "error" in item:
                tqdm.write(format_prediction(item), file=sys.stderr if args.output else sys.stdout)
    if args.json:
        print(json.dumps(results, indent=2))
    if args.output:
        print(f"{len(paths)} videos, {errors} unreadable -> {args.output}", file=sys.stderr)
    return 1 if errors else 0


def run_timeline(args: argparse.Namespace, model) -> int:
    from laps.analysis.timeline_plot import truth_summary
    from laps.engine.inference import model_timeline
    from laps.engine.segmenting import read_truth
    from laps.engine.timeline import open_stream, segments, write_timeline
    from laps.errors import ConfigError

    if len(args.videos) != 1 or not args.output:
        raise ConfigError("--timeline takes one video (a path, a URL or -) and --output DIR")
    check_timeline_flags(args)
    truth = read_truth(args.truth) if args.truth else None
    with open_stream(args.videos[0]) as container:
        timeline = model_timeline(model, container, window=args.window, stride=args.stride, batch_size=args.batch_size)
    found = segments(timeline, args.smooth, args.switch, args.background)
    write_timeline(timeline, found, args.output, smooth=args.smooth, background=args.background, truth=truth)
    for segment in found:
        print(f"{segment['start']:8.1f}s - {segment['end']:8.1f}s  {segment['label']}  {100 * segment['score']:.1f}%")
    if truth:
        print(truth_summary(found, truth), file=sys.stderr)
    print(f"{len(timeline.starts)} clips over {timeline.duration:.1f} s, {len(found)} segments -> {args.output}",
          file=sys.stderr)
    return 0


class PredictionLog:
    """JSON Lines of predictions: each line written whole and flushed as it comes, into
    ``PATH.partial``, renamed to ``PATH`` when the block ends normally. A run killed midway leaves
    the complete lines so far under ``.partial`` and never an incomplete file under ``PATH``."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.partial = Path(f"{path}.partial") if path else None
        self._file = None

    def __enter__(self) -> "PredictionLog":
        if self.partial is not None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.partial, "w")
        return self

    def write(self, item: dict) -> None:
        if self._file is not None:
            self._file.write(json.dumps(item) + "\n")
            self._file.flush()

    def __exit__(self, exc_type, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            if exc_type is None:
                os.replace(self.partial, self.path)


DEMO_EXAMPLES = """examples:
  laps demo                      # base2d vs laps on the synthetic dataset, report in runs/demo/report.md
  laps demo --ablation           # also ps and la
  laps demo --quick --output /tmp/d  # seconds: tiny sizes, a smoke test
"""


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "demo", "train base2d and LAPS on the synthetic dataset and compare", None,
                    DEMO_EXAMPLES)
    add_option(p, "--output", "--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one epoch: a smoke test in seconds")
    p.add_argument("--ablation", action="store_true", help="also train ps and la")
    p.add_argument("--videos-per-class", type=int, default=None, help="synthetic videos per class (default 150)")
    p.add_argument("--views", default="2x1", help="evaluation views, clips x crops (default 2x1)")
    p.set_defaults(func=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    from laps.demo import run_demo

    run_demo(args.output, quick=args.quick, ablation=args.ablation, videos_per_class=args.videos_per_class, views=args.views)
    return 0
