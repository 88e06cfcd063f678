"""``laps predict``: classify video files, or label one long video or stream over time (``--timeline``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from laps.cli.common import CHECKPOINT_HELP, add_command, add_device_flag, counted, pinned_threads
from laps.cli.timeline_flags import add_timeline_flags, check_timeline_flags
from laps.cli.zero_shot_flags import add_zero_shot_flags, load_classifier

PREDICT_EXAMPLES = """examples:
  laps predict --checkpoint runs/demo/laps video1.mp4 video2.mp4
  laps predict --checkpoint shared_model --json --top-k 3 my_videos/     # a save_pretrained folder
  laps predict --checkpoint someone/laps-k400 video1.mp4                 # a Hugging Face Hub id
  laps predict --checkpoint hf-hub:timm/vit_base_patch16_clip_224.openai --labels "dancing,cooking" video1.mp4  # zero-shot
  laps predict --checkpoint runs/mine my_videos/ --output predictions.jsonl   # streamed, one line per video
  laps predict --checkpoint runs/mine long.mp4 --timeline --window 2 --stride 1 --output long_timeline/
  laps predict --checkpoint runs/mine long.mp4 --timeline --switch 8 --truth long_segments.csv --output long_timeline/
  ffmpeg -i rtsp://camera/stream -f mpegts - | laps predict --checkpoint runs/mine - --timeline --output cam/
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "predict", "classify video files", None, PREDICT_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--views", default="1x3", help="temporal clips x spatial crops (default 1x3)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--output", default=None, metavar="FILE.jsonl",
                   help="write one JSON line per video as it is classified, into FILE.jsonl.partial, renamed to "
                        "FILE.jsonl once every video is done (with --timeline: the output folder)")
    add_device_flag(p)
    timeline = p.add_argument_group("timeline of one long video or stream (--timeline)")
    timeline.add_argument("--timeline", action="store_true",
                          help="label one video (a path, a URL PyAV opens, or - for stdin) over time: writes "
                               "timeline.json, timeline.csv and timeline.png into --output DIR")
    add_timeline_flags(timeline)
    timeline.add_argument("--truth", default=None, metavar="SEGMENTS.csv",
                          help="true segments (CSV with header start,end,label): drawn in the PNG with the boundary error")
    timeline.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (default 8)")
    add_zero_shot_flags(p)
    p.set_defaults(func=pinned_threads(run_predict))


def run_predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from laps.data.inputs import expand_videos
    from laps.errors import ConfigError
    from laps.serve.inference import format_prediction, iter_predictions

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be at least 1 (the classes to print for each video), got {args.top_k}")
    paths = None if args.timeline else expand_videos(args.videos)  # judged before the model loads
    model = load_classifier(args)
    if args.timeline:
        return run_timeline(args, model)
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
        print(f"{counted(len(paths), 'video')}, {errors} unreadable -> {args.output}", file=sys.stderr)
    return 1 if errors else 0


def run_timeline(args: argparse.Namespace, model) -> int:
    from laps.errors import ConfigError
    from laps.serve.inference import model_timeline
    from laps.serve.segmenting import read_truth
    from laps.serve.timeline import open_stream, segments, write_timeline
    from laps.serve.timeline_plot import truth_summary

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
    print(f"{counted(len(timeline.starts), 'clip')} over {timeline.duration:.1f} s, {counted(len(found), 'segment')} "
          f"-> {args.output}", file=sys.stderr)
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
        from laps.atomic import fsync_path

        if self._file is not None:
            self._file.close()
            if exc_type is None:  # on disk before the rename, the rename on disk after it (laps.atomic)
                fsync_path(self.partial)
                os.replace(self.partial, self.path)
                fsync_path(self.path.parent)
