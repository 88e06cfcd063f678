"""The zero-shot options of the commands that classify: ``--labels`` turns ``--checkpoint OPENCLIP_ID``
(``hf-hub:ORG/REPO``, ``local-dir:PATH`` or a folder with ``open_clip_config.json``) into a classifier
of those labels with no training (:func:`laps.zero_shot`)."""

from __future__ import annotations

import argparse
from pathlib import Path

LABELS_HELP = ("zero-shot: the class names, a comma list ('dancing,cooking') or a file (one name per line, or a "
               "JSON list); --checkpoint is then an open_clip model: hf-hub:ORG/REPO, local-dir:PATH or a folder "
               "with open_clip_config.json")


def add_zero_shot_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--labels``, ``--templates``, ``--temporal`` and ``--num-frames`` to a command."""
    group = parser.add_argument_group("zero-shot from class names (--labels; needs pip install 'laps[zeroshot]')")
    group.add_argument("--labels", default=None, metavar="FILE_OR_COMMA_LIST", help=LABELS_HELP)
    group.add_argument("--templates", default=None, metavar="FILE",
                       help="prompt templates, one per line with {} for the name (default: video templates after "
                            "the CLIP paper's Kinetics-700 prompts)")
    group.add_argument("--temporal", default=None, help="video variant of the zero-shot model (default laps)")
    group.add_argument("--num-frames", type=int, default=None, help="frames per clip of the zero-shot model (default 8)")


def read_labels(value: str) -> list[str]:
    """Class names of ``--labels``: a file (one per line, or a JSON class map) or a comma list."""
    from laps.errors import ConfigError

    path = Path(value)
    if path.is_file():
        if path.suffix == ".json":
            from laps.data.annotations import load_classes

            return load_classes(path)
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    elif "," in value or not path.suffix:
        names = [name.strip() for name in value.split(",")]
    else:
        raise ConfigError(f"--labels file {value} does not exist; give a file with one name per line, or 'a,b,c'")
    names = [name for name in names if name]
    if len(names) < 2:
        raise ConfigError(f"--labels gives {len(names)} class name; zero-shot needs at least two to choose between")
    return names


def load_classifier(args: argparse.Namespace):
    """The model of ``--checkpoint``: with ``--labels``, a zero-shot one; else the trained model
    (:func:`laps.serve.inference.load_model`). In eval mode on ``--device``."""
    from laps.errors import ConfigError
    from laps.serve.inference import load_model

    if args.labels is None:
        if args.templates or args.temporal or args.num_frames:
            raise ConfigError("--templates, --temporal and --num-frames build a zero-shot model: add --labels, "
                              "or drop them for a trained --checkpoint")
        return load_model(args.checkpoint, args.device)
    from laps.infer.device import resolve_device
    from laps.openvocab import read_templates, zero_shot

    templates = read_templates(args.templates) if args.templates else None
    model = zero_shot(args.checkpoint, read_labels(args.labels), templates, temporal=args.temporal or "laps",
                      num_frames=args.num_frames or 8)
    return model.to(resolve_device(args.device))
