"""Params, GFLOPs per view (base2d and laps) and input settings of one base-size model per family.

    python benchmarks/families.py --json benchmarks/results/families.json

Prints a Markdown table (the one in docs/model_zoo.md) and writes the rows as JSON. FLOPs are fvcore's
(one multiply-add = one FLOP) for an 8x224 clip, divided by nothing: one view. Random weights; nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from timm.models import get_pretrained_cfg

from laps.analysis.flops import model_cost
from laps.models.pretrained import weights_name

#: family -> a base-size model of it
FAMILIES = {
    "ViT (AugReg)": "vit_base_patch16_224",
    "CLIP": "vit_base_patch16_clip_224",
    "SigLIP / SigLIP2": "vit_base_patch16_siglip_224",
    "DINOv2 (registers)": "vit_base_patch14_reg4_dinov2",
    "AIMv2": "aimv2_large_patch14_224",
    "EVA02": "eva02_base_patch14_224",
    "DINOv3": "vit_base_patch16_dinov3",
    "Perception Encoder core": "vit_pe_core_base_patch16_224",
    "rope ViT": "vit_base_patch16_rope_224",
    "Visformer (the paper's)": "visformer_small",
}


def family_row(family: str, backbone: str, num_frames: int, img_size: int) -> dict:
    tag = weights_name(backbone)
    cfg = get_pretrained_cfg(tag)
    cost = model_cost(backbone, "laps", num_frames, img_size, num_classes=400)
    return {"family": family, "backbone": backbone, "default_weights": tag, "params_m": cost["params"] / 1e6,
            "base2d_gflops": cost["base2d_gflops"], "laps_gflops": cost["gflops"], "overhead": cost["overhead"],
            "mean": list(cfg.mean), "std": list(cfg.std), "interpolation": cfg.interpolation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    rows = [family_row(family, name, args.num_frames, args.img_size) for family, name in FAMILIES.items()]
    print("| family | example | default weights | params | GFLOPs base2d | GFLOPs laps | overhead | mean / std | resize |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        norm = f"{tuple(round(m, 3) for m in r['mean'])} / {tuple(round(s, 3) for s in r['std'])}"
        print(f"| {r['family']} | `{r['backbone']}` | `{r['default_weights']}` | {r['params_m']:.1f}M | "
              f"{r['base2d_gflops']:.1f} | {r['laps_gflops']:.1f} | +{100 * r['overhead']:.1f}% | {norm} | "
              f"{r['interpolation']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
