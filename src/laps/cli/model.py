"""Model subcommands: ``laps flops``, ``laps export``."""

from __future__ import annotations

import argparse

from laps.cli import add_command, add_option
from laps.models.temporal import VARIANTS

EXPORT_EXAMPLES = """examples:
  laps export --checkpoint runs/demo/laps --output laps.onnx
  laps export --checkpoint runs/demo/laps --output laps.pt2
  laps export --checkpoint someone/laps-k400 --output k400.onnx    # a Hugging Face Hub id
"""
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
    add_option(p, "--num-frames", "--frames", type=int, default=None, help="frames per clip (default 8)")
    p.add_argument("--img-size", type=int, default=None, help="default: 224")
    p.add_argument("--num-classes", type=int, default=400)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_flops)

    p = add_command(subparsers, "export", "export a trained model to ONNX (.onnx) or torch.export (.pt2), checked",
                    "Export a trained model with a dynamic batch, then run the exported file on random clips and "
                    "compare it with the eager model (ONNX: in ONNX Runtime on the CPU).", EXPORT_EXAMPLES)
    p.add_argument("--checkpoint", required=True,
                   help="a run directory (its best weights), a save_pretrained folder, a .safetensors weights file "
                        "or a Hugging Face Hub id user/name")
    p.add_argument("--output", required=True, help="FILE.onnx or FILE.pt2: the format follows the extension")
    p.add_argument("--batch-size", type=int, default=2, help="batch of the example clips traced (default 2)")
    p.set_defaults(func=run_export)


def run_flops(args: argparse.Namespace) -> int:
    from laps.analysis.flops import model_cost
    from laps.cli import print_json

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


def run_export(args: argparse.Namespace) -> int:
    import laps
    from laps.cli import print_json
    from laps.export import check_export, export

    model = laps.from_pretrained(args.checkpoint)
    path = export(model, args.output, args.batch_size)
    print_json({"output": str(path), "num_frames": model.num_frames, **check_export(model, path)})
    return 0
