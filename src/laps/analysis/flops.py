"""FLOPs (fvcore convention: one fused multiply-add = one FLOP, as in the paper) and params."""

from __future__ import annotations

from math import prod
from typing import Any

import torch
from torch import nn

from laps.models.factory import create_model


def _sdpa_flop(inputs: list[Any], outputs: list[Any]) -> int:
    """``aten::scaled_dot_product_attention``: ``q k^T`` plus ``attn v`` multiply-adds."""
    from fvcore.nn.jit_handles import get_shape

    q, k, v = (get_shape(x) for x in inputs[:3])
    *batch, queries, dim = q
    keys, dim_v = k[-2], v[-1]
    return prod(batch) * queries * keys * (dim + dim_v)


def count_flops(model: nn.Module, clips: torch.Tensor) -> float:
    """Total FLOPs (multiply-adds) of one forward of ``model`` on ``clips`` ``(B, T, C, H, W)``,
    divided by B: the cost of one view. Counts SDPA, which fvcore skips by default."""
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(model, clips)
    analysis.set_op_handle("aten::scaled_dot_product_attention", _sdpa_flop)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            total = analysis.total()
    finally:
        model.train(was_training)
    return total / clips.shape[0]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_cost(
    backbone: str,
    temporal: str = "laps",
    num_frames: int = 8,
    img_size: int = 224,
    num_classes: int = 400,
    **model_kwargs,
) -> dict[str, float]:
    """Params, GFLOPs per view, the base2d GFLOPs and the relative overhead over base2d."""

    def gflops(variant: str) -> tuple[float, int]:
        model = create_model(
            backbone, temporal=variant, num_frames=num_frames, num_classes=num_classes,
            img_size=img_size, **model_kwargs,
        )
        clips = torch.zeros(1, num_frames, model.in_chans, img_size, img_size)
        return count_flops(model, clips) / 1e9, count_params(model)

    value, params = gflops(temporal)
    base = value if temporal == "base2d" else gflops("base2d")[0]
    return {"params": params, "gflops": value, "base2d_gflops": base, "overhead": value / base - 1}
