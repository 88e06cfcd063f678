"""``laps train``: train a video model from a recipe, flags and KEY=VALUE overrides."""

from __future__ import annotations

import argparse
import json

from laps.cli.common import add_command

TRAIN_EXAMPLES = """examples:
  laps train --list-configs                                  # the shipped recipes, one line each
  laps train --config demo --data-root runs/demo/data --train-list train.txt --val-list val.txt --output runs/mine
  laps train --data-root data/k400 --train-list train.csv --val-list val.csv \\
      --model visformer_small --temporal laps --num-frames 8 --epochs 18 --lr 0.2
  laps train --config demo --data-root runs/demo/data --train-list train.txt optim.warmup_epochs=2 data.flip=false
  torchrun --nproc_per_node 4 -m laps train --config configs/k400_visformer_s_laps.yaml
  laps train --config demo --data-root runs/demo/data --train-list train.txt --val-list val.txt --output runs/mine --resume
"""


#: CLI flag -> config key
TRAIN_FLAGS = {
    "data_root": "data.root", "train_list": "data.train_list", "val_list": "data.val_list",
    "model": "model.backbone", "temporal": "model.temporal", "num_frames": "model.num_frames",
    "sampling_rate": "data.sampling_rate", "img_size": "model.img_size", "epochs": "optim.epochs",
    "batch_size": "optim.batch_size", "lr": "optim.lr", "output": "runtime.output", "seed": "runtime.seed",
    "amp": "runtime.amp", "device": "runtime.device", "workers": "data.num_workers",
}


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "train", "train a video model", None, TRAIN_EXAMPLES)
    p.add_argument("--config", help="a recipe: a YAML file (sections model/data/optim/runtime) or the name of a "
                                    "shipped recipe, e.g. demo or k400_visformer_s_laps (see --list-configs)")
    p.add_argument("--list-configs", action="store_true", help="list the shipped recipes, one line each, and exit")
    for flag in TRAIN_FLAGS:
        p.add_argument("--" + flag.replace("_", "-"), dest=flag, default=None, help=f"sets {TRAIN_FLAGS[flag]}")
    runs = p.add_mutually_exclusive_group()
    runs.add_argument("--resume", action="store_true",
                      help="continue the run in --output from its last checkpoint (mid-epoch after SIGTERM / SIGUSR1)")
    runs.add_argument("--overwrite", action="store_true",
                      help="replace a run found in --output (without it, such a directory is refused)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="any config key, e.g. optim.weight_decay=0")
    p.set_defaults(func=run_train)


def list_configs() -> int:
    """Print every shipped recipe's name and the first line of its comment -> 0."""
    from laps.engine.recipes import recipe_summary, shipped_recipes

    recipes = shipped_recipes()
    width = max(map(len, recipes))
    for name, path in recipes.items():
        print(f"{name:<{width}}  {recipe_summary(path)}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    if args.list_configs:
        return list_configs()
    from laps.engine.config import load_config, parse_overrides

    flags = {key: getattr(args, flag) for flag, key in TRAIN_FLAGS.items()}
    config = load_config(args.config, {**flags, **parse_overrides(args.overrides)})  # refused before torch loads
    from laps.engine.trainer import train

    summary = train(config, resume=args.resume, overwrite=args.overwrite)
    if summary:
        print(json.dumps(summary, indent=2))
    return 0
