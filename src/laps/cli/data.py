"""``laps data check|prepare|resize`` and ``laps make-synthetic``: argparse sub-commands for the main CLI.

The main CLI calls :func:`add_parsers` with its sub-parsers; every command sets
``func(args) -> exit status``. Errors are raised as :class:`~laps.errors.LapsError`.
"""

from __future__ import annotations

import argparse

from laps.cli.common import add_command, counted, workers
from laps.data.annotations import FORMATS, default_root, find_file, load_annotations
from laps.data.prepare import PREPARE_FORMATS
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

PREPARE_EXAMPLES = """examples:
  laps data prepare kinetics kinetics400 k400_lists          # train.csv, validate.csv in kinetics400/
  laps data prepare ssv2 ssv2 ssv2_lists --annotations ssv2/labels
  laps data prepare ucf101 UCF-101 ucf101_split1 --split 1   # ucfTrainTestlist/ beside UCF-101/
  laps data prepare hmdb51 hmdb51 hmdb51_split1 --split 1
  laps data prepare folder my_videos my_lists --val-fraction 0.2 --check

writes OUT/train.txt, OUT/val.txt (OUT/test.txt), OUT/classes.json and OUT/missing.txt
(OUT/unreadable.txt with --check); then: laps train --data-root OUT --train-list train.txt
--val-list val.txt. Exit status 1 when videos were left out."""

SYNTHETIC_EXAMPLES = """examples:
  laps make-synthetic data/synthetic
  laps make-synthetic /tmp/syn --videos-per-class 10 --seed 1 --video-frames 16 --size 64

writes OUT/videos/<class>/*.mp4, OUT/train.txt, OUT/val.txt and OUT/classes.json"""


def _processes(count: int | str) -> int:
    """A ``--workers`` value as a process count: ``auto`` is every core this process may use."""
    from laps.data.cores import usable_cores

    return usable_cores() if count == "auto" else max(1, count)


def run_check(args: argparse.Namespace) -> int:
    """Check every video of an annotation file; print broken ones and a summary -> 0 or 1."""
    from laps.data.check import check_dataset

    listing = find_file(args.list, args.root, "LIST")
    records = load_annotations(listing, root=args.root, fmt=args.format)
    root = args.root if args.root is not None else default_root(listing)
    broken = check_dataset(records, root, workers=_processes(args.workers))
    for path, reason in broken:
        print(f"BROKEN {path}: {reason}")
    print(f"checked {counted(len(records), 'video')}: {len(broken)} broken")
    return 1 if broken else 0


def run_make_synthetic(args: argparse.Namespace) -> int:
    """Write the synthetic temporal dataset -> 0."""
    from laps.data.synthetic import make_synthetic

    out = make_synthetic(args.out, videos_per_class=args.videos_per_class, seed=args.seed,
                         num_frames=args.video_frames, size=args.size)
    print(f"wrote synthetic dataset to {out} (train.txt, val.txt, classes.json)")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """Write a raw dataset's lists; print the counts and the videos left out -> 0 or 1."""
    from laps.data.prepare import prepare_dataset

    report = prepare_dataset(args.format, args.root, args.out, args.annotations, split=args.split,
                             val_fraction=args.val_fraction, seed=args.seed, check=args.check,
                             workers=_processes(args.workers))
    for path in report.missing:
        print(f"MISSING {path}")
    for path, reason in report.unreadable:
        print(f"BROKEN {path}: {reason}")
    counts = ", ".join(f"{name} {count}" for name, count in report.written.items())
    print(f"wrote {counts} videos to {args.out}; left out {len(report.missing)} missing, "
          f"{len(report.unreadable)} unreadable")
    return 1 if report.missing or report.unreadable else 0


def run_resize(args: argparse.Namespace) -> int:
    """Re-encode a dataset; print what was done and the unreadable sources -> 0 or 1."""
    from laps.data.resize import resize_dataset

    report = resize_dataset(find_file(args.src, args.root, "SRC"), args.dst, short_side=args.short_side, keyframe_interval=args.keyframe_interval,
                            fast_decode=not args.compact, workers=_processes(args.workers), root=args.root, fmt=args.format)
    for path, reason in report.broken:
        print(f"BROKEN {path}: {reason}")
    listed = f"; list: {report.list_file}" if report.list_file else ""
    print(f"resized {report.converted} videos, {report.skipped} already done, {len(report.broken)} unreadable{listed}")
    return 1 if report.broken else 0


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``data`` (``check``, ``prepare``, ``resize``) and ``make-synthetic`` on the main CLI's sub-parsers."""
    data = add_command(subparsers, "data", "prepare, check and re-encode video datasets",
                       "Prepare, check and re-encode video datasets; 'laps data COMMAND --help' for each.",
                       "\n\n".join((PREPARE_EXAMPLES, CHECK_EXAMPLES, RESIZE_EXAMPLES)))
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    check = add_command(data_commands, "check", "find broken videos of an annotation file",
                        "Open every video of an annotation file in parallel and decode its first and last frame.",
                        CHECK_EXAMPLES)
    check.add_argument("list", help="annotation file or folder-per-class directory")
    check.add_argument("--root", default=None, help="dataset root of the video paths (default: the list's folder)")
    check.add_argument("--workers", type=workers, default="auto", help="parallel processes, or auto: every core (default)")
    check.add_argument("--format", default="auto", choices=FORMATS, help="annotation format (default: auto)")
    check.set_defaults(func=run_check)

    prepare = add_command(
        data_commands, "prepare", "write train/val lists and classes.json for a raw dataset download",
        "Read a dataset's own annotation files (or a folder per class), write path-label lists that laps train "
        "reads, and report the videos that are missing (and, with --check, unreadable).", PREPARE_EXAMPLES)
    prepare.add_argument("format", choices=PREPARE_FORMATS, help="the dataset's layout")
    prepare.add_argument("root", help="the dataset folder (its videos)")
    prepare.add_argument("out", help="output folder for the lists")
    prepare.add_argument("--annotations", default=None, help="folder of the annotation files (default: searched)")
    prepare.add_argument("--split", type=int, default=1, help="UCF101/HMDB51 split 1, 2 or 3 (default: 1)")
    prepare.add_argument("--val-fraction", type=float, default=0.2, help="folder: share of each class for val")
    prepare.add_argument("--seed", type=int, default=0, help="folder: seed of the val split (default: 0)")
    prepare.add_argument("--check", action="store_true", help="also open every video and leave out unreadable ones")
    prepare.add_argument("--workers", type=workers, default="auto",
                         help="--check: parallel processes, or auto: every core (default)")
    prepare.set_defaults(func=run_prepare)

    resize = add_command(
        data_commands, "resize", "re-encode a dataset to a short side and a short key-frame interval",
        "Re-encode every video of a folder (its tree kept under DST) or of an annotation file (a new list "
        "written in DST): H.264, short side scaled down to --short-side, a key frame every --keyframe-interval "
        "frames, no audio. Resumable: finished files are skipped.", RESIZE_EXAMPLES)
    resize.add_argument("src", help="video folder, or annotation file")
    resize.add_argument("dst", help="output folder (outside the source folder)")
    resize.add_argument("--short-side", type=int, default=320, help="short side in pixels (default: 320)")
    resize.add_argument("--keyframe-interval", type=int, default=KEYFRAME_INTERVAL,
                        help=f"maximum frames between key frames (default: {KEYFRAME_INTERVAL}, measured)")
    resize.add_argument("--compact", action="store_true",
                        help="about 2/3 of the default file size, but decoding takes about 1.7x as long")
    resize.add_argument("--root", default=None, help="dataset root of a list's video paths (default: the list's folder)")
    resize.add_argument("--format", default="auto", choices=FORMATS, help="annotation format (default: auto)")
    resize.add_argument("--workers", type=workers, default="auto", help="parallel processes, or auto: every core (default)")
    resize.set_defaults(func=run_resize)

    synthetic = add_command(
        subparsers, "make-synthetic", "write the synthetic temporal dataset (H.264 mp4 + lists)",
        "Write ten classes in time-reversed pairs (a plaid drifting left/right, up/down, fading in/out, "
        "focusing/blurring, brightening/darkening) as real H.264 videos.", SYNTHETIC_EXAMPLES)
    synthetic.add_argument("out", help="output directory")
    synthetic.add_argument("--videos-per-class", type=int, default=40, help="videos per class (default: 40)")
    synthetic.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    synthetic.add_argument("--video-frames", type=int, default=16, help="frames per video (default: 16)")
    synthetic.add_argument("--size", type=int, default=64, help="frame side in pixels, even (default: 64)")
    synthetic.set_defaults(func=run_make_synthetic)
