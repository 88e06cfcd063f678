"""Model subcommands: ``laps flops``."""

from __future__ import annotations

import argparse

from laps.cli import add_option
from laps.models.temporal import VARIANTS

FLOPS_EXAMPLES = """examples:
  laps flops visformer_small --temporal laps --num-frames 8 --img-size 224
  laps flops vit_base_patch16_224 --temporal joint --num-frames 16 --json
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "flops", help="params, GFLOPs per view and overhead over base2d (fvcore)",
        epilog=FLOPS_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("backbone", help="timm backbone name, e.g. visformer_small, vit_small_patch16_224")
    p.add_argument("--temporal", default="laps", choices=sorted(VARIANTS))
    add_option(p, "--num-frames", "--frames", type=int, default=8, help="frames per clip (default 8)")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--num-classes", type=int, default=400)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_flops)


def run_flops(args: argparse.Namespace) -> int:
    from laps.analysis.flops import model_cost
    from laps.cli import print_json

    cost = model_cost(args.backbone, args.temporal, args.num_frames, args.img_size, args.num_classes)
    if args.json:
        print_json(cost)
        return 0
    print(f"{args.backbone} {args.temporal} {args.num_frames}x{args.img_size}, {args.num_classes} classes")
    print(f"  params        {cost['params'] / 1e6:.2f}M")
    print(f"  GFLOPs/view   {cost['gflops']:.2f}")
    print(f"  base2d GFLOPs {cost['base2d_gflops']:.2f}")
    print(f"  overhead      {100 * cost['overhead']:+.2f}%")
    return 0
