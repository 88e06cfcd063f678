"""``laps flops``: parameters, GFLOPs per view and the overhead over base2d of a model or a recipe's model."""

from __future__ import annotations

import argparse

from laps.cli.common import add_command
from laps.variants import VARIANTS

FLOPS_EXAMPLES = """examples:
  laps flops visformer_small --temporal laps --num-frames 8 --img-size 224
  laps flops vit_base_patch16_224 --temporal joint --num-frames 16 --json
  laps flops --config configs/k400_vit_b16_laps_384.yaml     # the model a recipe trains
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "flops", "params, GFLOPs per view and overhead over base2d (fvcore)", None,
                    FLOPS_EXAMPLES)
    p.add_argument("backbone", nargs="?", help="timm backbone name, e.g. visformer_small, vit_small_patch16_224")
    p.add_argument("--config", help="a training recipe (YAML): count the model it describes instead")
    p.add_argument("--temporal", default=None, choices=sorted(VARIANTS), help="default: laps")
    p.add_argument("--num-frames", type=int, default=None, help="frames per clip (default 8)")
    p.add_argument("--img-size", type=int, default=None, help="default: 224")
    p.add_argument("--num-classes", type=int, default=400)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_flops)


def run_flops(args: argparse.Namespace) -> int:
    from laps.analysis.flops import model_cost
    from laps.cli.common import print_json
    from laps.engine.builders import model_kwargs
    from laps.engine.config import ModelConfig, load_config
    from laps.errors import ConfigError

    if (args.backbone is None) == (args.config is None):
        raise ConfigError("give a backbone name or --config RECIPE (one of them)")
    model = load_config(args.config).model if args.config else ModelConfig(backbone=args.backbone)
    for key in ("temporal", "num_frames", "img_size"):  # flags override the recipe's values
        if getattr(args, key) is not None:
            setattr(model, key, getattr(args, key))
    extra = {key: value for key, value in model_kwargs(model).items() if key != "img_size"}
    cost = model_cost(model.backbone, model.temporal, model.num_frames, model.img_size, args.num_classes, **extra)
    if args.json:
        print_json(cost)
        return 0
    print(f"{model.backbone} {model.temporal} {model.num_frames}x{model.img_size}, {args.num_classes} classes")
    print(f"  params        {cost['params'] / 1e6:.2f}M")
    print(f"  GFLOPs/view   {cost['gflops']:.2f}")
    print(f"  base2d GFLOPs {cost['base2d_gflops']:.2f}")
    print(f"  overhead      {100 * cost['overhead']:+.2f}%")
    return 0
