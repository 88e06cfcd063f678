"""``laps features``: video features of a whole dataset, one ``.npy`` per video and an index."""

from __future__ import annotations

import argparse
import os
import re
import sys

from laps.cli.common import CHECKPOINT_HELP, add_command, add_device_flag, pinned_threads, workers

EXAMPLES = """examples:
  laps features --checkpoint runs/mine --output feats/ videos/                  # one (D,) vector per video
  laps features --checkpoint runs/mine --output feats/ --window 2 --stride 1 videos/   # (n, D): a row per window
  laps features --model vit_base_patch16_clip_224.openai --output feats/ videos/ # an image model, frame by frame
  laps features --checkpoint someone/laps-k400 --output feats/ --dtype float16 list.txt
  laps features --checkpoint local-dir:clip_b16 --space joint --output feats/ videos/  # for laps search
  torchrun --nproc_per_node 8 -m laps features --checkpoint runs/mine --output feats/ videos/
  laps features --checkpoint runs/mine --output feats/ --shard $SLURM_ARRAY_TASK_ID/16 videos/
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "features", "video features of a dataset: a .npy per video and index.jsonl",
                    "Write the features of every video of the inputs into --output: one .npy per video (its path "
                    "relative to the input, suffix .npy) and index.jsonl, a record per video. Videos done in an "
                    "earlier run are skipped; processes of torchrun and --shard jobs split the videos and share "
                    "one index.", EXAMPLES)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="a video file, a folder (searched recursively) or a "
                   "list file (an annotation file laps reads, or one path per line)")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    model.add_argument("--model", metavar="TAG", help="a timm image model (name or name.tag) with its pretrained "
                       "weights, run frame by frame (--temporal base2d) or converted (--temporal laps, ...)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder for the .npy files and index.jsonl")
    p.add_argument("--data-root", default=None, help="folder the paths of a list file are relative to "
                   "(default: the list's folder)")
    p.add_argument("--views", default="1x3", help="clip mode: temporal clips x spatial crops averaged, as laps "
                   "predict --views (default 1x3)")
    p.add_argument("--window", type=float, default=None, help="window mode: seconds a window covers; a row per window")
    p.add_argument("--stride", type=float, default=None, help="window mode: seconds between window starts "
                   "(default: --window)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"))
    p.add_argument("--space", default=None, choices=("joint",),
                   help="joint: unit image embeddings that compare with text embeddings (laps search), of "
                        "--checkpoint OPENCLIP_ID (with --temporal and --num-frames) or of a laps model with a text head")
    p.add_argument("--shard", default="0/1", metavar="I/N", help="take every N-th video from the I-th (zero-based), "
                   "e.g. $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT (default 0/1: all)")
    p.add_argument("--retry-failed", action="store_true", help="try again the videos the index has as failed")
    p.add_argument("--overwrite", action="store_true", help="when --output holds features of other settings, "
                   "remove them (the files its index lists, the index) first")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass, across videos (default 8)")
    p.add_argument("--workers", type=workers, default="auto",
                   help="decoding processes, or 'auto': this process's CPU cores (default: auto)")
    add_device_flag(p)
    p.add_argument("--amp", default="none", choices=("none", "bf16", "fp16"))
    image = p.add_argument_group("an image model (--model)")
    image.add_argument("--temporal", default=None, help="base2d (frames independently, default), or a laps "
                       "variant: ps, la, laps, ...")
    image.add_argument("--num-frames", type=int, default=None, help="frames per clip (default 8)")
    image.add_argument("--sampling-rate", type=int, default=None, help="clip mode: frames between clip frames "
                       "(default: laps train's)")
    image.add_argument("--img-size", type=int, default=None, help="crop size (default: the model's)")
    image.add_argument("--random-weights", action="store_true", help="random weights instead of the pretrained ones "
                       "(to try the pipeline without a download)")
    p.set_defaults(func=pinned_threads(run_features))
    # "--shard -1/2" is a value to refuse in words, not an unknown option
    p._negative_number_matcher = re.compile(r"^-\d+(/\d*)?$|^-\d*\.\d+$")


def _image_model(args: argparse.Namespace):
    """The timm image model of ``--model``, fed as its weights were trained (timm's ``pretrained_cfg``)."""
    import laps
    from laps.infer.device import resolve_device

    kwargs = {"img_size": args.img_size} if args.img_size else {}
    model = laps.create_model(args.model, temporal=args.temporal or "base2d", num_frames=args.num_frames or 8,
                              pretrained=not args.random_weights, **kwargs)
    model.video_cfg = model.video_cfg.updated(sampling_rate=args.sampling_rate)
    return model.eval().to(resolve_device(args.device))


def _is_open_clip(checkpoint: str) -> bool:
    from laps.openvocab import is_open_clip_id

    return is_open_clip_id(checkpoint)


def _joint_model(args: argparse.Namespace):
    """The model of ``--space joint``: a zero-shot model of ``--checkpoint OPENCLIP_ID`` (its features do not
    depend on the class names, so it names one), or a laps checkpoint whose head is a text head."""
    from laps.errors import ConfigError
    from laps.infer.device import resolve_device
    from laps.openvocab import zero_shot
    from laps.serve.inference import load_model

    if args.model or not args.checkpoint:
        raise ConfigError("--space joint takes --checkpoint OPENCLIP_ID (hf-hub:ORG/REPO, local-dir:PATH) or a laps "
                          "model with a text head, not --model")
    if _is_open_clip(args.checkpoint):
        model = zero_shot(args.checkpoint, ["a video"], temporal=args.temporal or "laps", num_frames=args.num_frames or 8)
        return model.to(resolve_device(args.device))
    model = load_model(args.checkpoint, args.device)
    if model.video_cfg.head != "text":
        raise ConfigError(f"{args.checkpoint} has a linear head, not a text head: its features are not in a joint "
                          "image-text space; give an open_clip model or a zero-shot laps model")
    return model


#: the options of an image model (--model); a checkpoint's config says all of it
IMAGE_OPTIONS = ("temporal", "num_frames", "sampling_rate", "img_size", "random_weights")


def check_flags(args: argparse.Namespace) -> tuple[int, int]:
    """The checks of the flags alone, before any input is read or anything written -> the ``--shard``."""
    from laps.errors import ConfigError
    from laps.serve.feature_inputs import parse_shard
    from laps.serve.features import check_window

    given = [f"--{name.replace('_', '-')}" for name in IMAGE_OPTIONS if getattr(args, name) not in (None, False)]
    if args.checkpoint and given and not (args.space == "joint" and _is_open_clip(args.checkpoint)):
        raise ConfigError(f"{', '.join(given)}: options of --model only; a checkpoint's own config says how "
                          "it is fed")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1 clip, got {args.batch_size}")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ConfigError(f"--output {args.output} is a file; give a folder (a new one, or one laps features wrote)")
    check_window(args.window, args.stride)
    return parse_shard(args.shard)


def summary(counts: dict[str, int], output: str) -> str:
    """The closing line of a run: what it wrote, skipped and failed."""
    line = (f"{counts['videos']} videos: {counts['ok']} written, {counts['skipped']} done before, "
            f"{counts['failed']} failed -> {output}")
    if counts["failed_before"]:
        line += f"; {counts['failed_before']} failed in an earlier run, skipped (--retry-failed tries them again)"
    return line


def run_features(args: argparse.Namespace) -> int:
    from laps.serve.feature_inputs import launch_share, list_inputs
    from laps.serve.features import write_features
    from laps.serve.inference import load_model

    shard = check_flags(args)
    inputs = list_inputs(args.inputs, args.data_root)
    if args.space == "joint":
        model = _joint_model(args)
    else:
        model = _image_model(args) if args.model else load_model(args.checkpoint, args.device)
    counts = write_features(model, inputs, args.output, views=args.views, window=args.window, stride=args.stride,
                            dtype=args.dtype, batch_size=args.batch_size, num_workers=args.workers, amp=args.amp,
                            shard=shard, retry_failed=args.retry_failed, overwrite=args.overwrite)
    print(summary(counts, args.output), file=sys.stderr)
    # under torchrun a failed video is a record, not a failed process: torchrun would take exit 1 for a crash
    return 1 if counts["failed"] and launch_share()[1] == 1 else 0
