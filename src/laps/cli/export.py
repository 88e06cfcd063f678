"""``laps export``: a trained model to ONNX (.onnx) or torch.export (.pt2), checked against the eager model."""

from __future__ import annotations

import argparse

from laps.cli.common import CHECKPOINT_HELP, add_command

EXPORT_EXAMPLES = """examples:
  laps export --checkpoint runs/demo/laps --output laps.onnx
  laps export --checkpoint runs/demo/laps --output laps.pt2
  laps export --checkpoint someone/laps-k400 --output k400.onnx    # a Hugging Face Hub id
"""


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", "export a trained model to ONNX (.onnx) or torch.export (.pt2), checked",
                    "Export a trained model with a dynamic batch, then run the exported file on random clips and "
                    "compare it with the eager model (ONNX: in ONNX Runtime on the CPU).", EXPORT_EXAMPLES)
    p.add_argument("--checkpoint", required=True, help=CHECKPOINT_HELP)
    p.add_argument("--output", required=True, help="FILE.onnx or FILE.pt2: the format follows the extension")
    p.add_argument("--batch-size", type=int, default=2, help="batch of the example clips traced (default 2)")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from laps.cli.common import print_json
    from laps.export import check_export, export
    from laps.serve.inference import load_model

    model = load_model(args.checkpoint, "cpu")
    path = export(model, args.output, args.batch_size)
    print_json({"output": str(path), "num_frames": model.num_frames, **check_export(model, path)})
    return 0
