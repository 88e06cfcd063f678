"""``laps data check|resize`` and ``laps make-synthetic``: argparse sub-commands for the main CLI.

The main CLI calls :func:`add_parsers` with its sub-parsers; every command sets
``func(args) -> exit status``. Errors are raised as :class:`~laps.errors.LapsError`.
"""

from __future__ import annotations

import argparse
import os

from laps.cli import add_option
from laps.data.annotations import FORMATS, default_root, load_annotations
from laps.data.resize import KEYFRAME_INTERVAL

CHECK_EXAMPLES = """examples:
  laps data check data/synthetic/train.txt
  laps data check kinetics400/train.csv --root kinetics400/videos --workers 16
  laps data check ucfTrainTestlist/trainlist01.txt --root UCF-101

prints 'BROKEN <path>: <reason>' per broken video and a summary line;
exit status 0 when nothing is broken, 1 otherwise"""

RESIZE_EXAMPLES = """examples:
  laps data resize kinetics400/videos kinetics400_320 --short-side 320
  laps data resize ucfTrainTestlist/trainlist01.txt ucf101_256 --root UCF-101 --short-side 256

prints 'BROKEN <path>: <reason>' per unreadable source and a summary line; exit status 0 when
every source was read, 1 otherwise. Run it again to finish an interrupted run."""

SYNTHETIC_EXAMPLES = """examples:
  laps make-synthetic data/synthetic
  laps make-synthetic /tmp/syn --videos-per-class 10 --seed 1 --video-frames 16 --size 64

writes OUT/videos/<class>/*.mp4, OUT/train.txt, OUT/val.txt and OUT/classes.json"""


def run_check(args: argparse.Namespace) -> int:
    """Check every video of an annotation file; print broken ones and a summary -> 0 or 1."""
    from laps.data.check import check_dataset

    records = load_annotations(args.list, root=args.root, fmt=args.format)
    root = args.root if args.root is not None else default_root(args.list)
    broken = check_dataset(records, root, workers=args.workers)
    for path, reason in broken:
        print(f"BROKEN {path}: {reason}")
    print(f"checked {len(records)} videos: {len(broken)} broken")
    return 1 if broken else 0


def run_make_synthetic(args: argparse.Namespace) -> int:
    """Write the synthetic temporal dataset -> 0."""
    from laps.data.synthetic import make_synthetic

    out = make_synthetic(args.out, videos_per_class=args.videos_per_class, seed=args.seed,
                         num_frames=args.video_frames, size=args.size)
    print(f"wrote synthetic dataset to {out} (train.txt, val.txt, classes.json)")
    return 0


def run_resize(args: argparse.Namespace) -> int:
    """Re-encode a dataset; print what was done and the unreadable sources -> 0 or 1."""
    from laps.data.dataset import usable_cores
    from laps.data.resize import resize_dataset

    workers = usable_cores() if args.workers == "auto" else args.workers
    report = resize_dataset(args.src, args.dst, short_side=args.short_side, keyframe_interval=args.keyframe_interval,
                            fast_decode=not args.compact, workers=workers, root=args.root, fmt=args.format)
    for path, reason in report.broken:
        print(f"BROKEN {path}: {reason}")
    listed = f"; list: {report.list_file}" if report.list_file else ""
    print(f"resized {report.converted} videos, {report.skipped} already done, {len(report.broken)} unreadable{listed}")
    return 1 if report.broken else 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data`` (with ``check``) and ``make-synthetic`` on the main CLI's sub-parsers."""
    data = subparsers.add_parser("data", help="inspect video datasets", description="Inspect video datasets.",
                                 epilog=CHECK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    check = data_commands.add_parser(
        "check", help="find broken videos of an annotation file",
        description="Open every video of an annotation file in parallel and decode its first and last frame.",
        epilog=CHECK_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("list", help="annotation file or folder-per-class directory")
    check.add_argument("--root", default=None, help="dataset root of the video paths (default: the list's folder)")
    check.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel processes (default: all cores)")
    check.add_argument("--format", default="auto", choices=FORMATS, help="annotation format (default: auto)")
    check.set_defaults(func=run_check)

    resize = data_commands.add_parser(
        "resize", help="re-encode a dataset to a short side and a short key-frame interval",
        description="Re-encode every video of a folder (its tree kept under DST) or of an annotation file "
                    "(a new list written in DST): H.264, short side scaled down to --short-side, a key frame "
                    "every --keyframe-interval frames, no audio. Resumable: finished files are skipped.",
        epilog=RESIZE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    resize.add_argument("src", help="video folder, or annotation file")
    resize.add_argument("dst", help="output folder (outside the source folder)")
    resize.add_argument("--short-side", type=int, default=320, help="short side in pixels (default: 320)")
    resize.add_argument("--keyframe-interval", type=int, default=KEYFRAME_INTERVAL,
                        help=f"maximum frames between key frames (default: {KEYFRAME_INTERVAL}, measured)")
    resize.add_argument("--compact", action="store_true",
                        help="about 2/3 of the default file size, but decoding takes about 1.7x as long")
    resize.add_argument("--root", default=None, help="dataset root of a list's video paths (default: the list's folder)")
    resize.add_argument("--format", default="auto", choices=FORMATS, help="annotation format (default: auto)")
    resize.add_argument("--workers", default="auto", type=lambda text: text if text == "auto" else int(text),
                        help="parallel processes, or auto: every core (default)")
    resize.set_defaults(func=run_resize)

    synthetic = subparsers.add_parser(
        "make-synthetic", help="write the synthetic temporal dataset (H.264 mp4 + lists)",
        description="Write ten classes in time-reversed pairs (a plaid drifting left/right, "
                    "up/down, fading in/out, focusing/blurring, brightening/darkening) as real H.264 videos.",
        epilog=SYNTHETIC_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    synthetic.add_argument("out", help="output directory")
    synthetic.add_argument("--videos-per-class", type=int, default=40, help="videos per class (default: 40)")
    synthetic.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    add_option(synthetic, "--video-frames", "--frames", type=int, default=16, help="frames per video (default: 16)")
    synthetic.add_argument("--size", type=int, default=64, help="frame side in pixels, even (default: 64)")
    synthetic.set_defaults(func=run_make_synthetic)
