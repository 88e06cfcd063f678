"""timm VisionTransformer family (ViT, DeiT, CLIP, SigLIP, DINOv2, MAE, AIMv2, TIPSv2, BEiT3, flexivit,
...): every block's attention becomes temporal."""

from __future__ import annotations

import re

import torch
from timm.layers.attention import Attention
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from laps.errors import UnsupportedBackboneError
from laps.models.family import Family, patch_embed_size
from laps.models.temporal import PATCH_DROPOUT, TemporalAttention, compute_dtype

_PARALLEL = "its attention is fused with the MLP or split into parallel branches, which laps has no temporal version of"
_DIFF = "differential attention subtracts two softmax maps; laps converts plain softmax attention only"


class ViTTemporalAttention(TemporalAttention):
    """Temporal version of ``timm.layers.Attention`` on tokens ``(B*T, N, C)``.

    Holds the original ``qkv``, ``q_norm``, ``k_norm``, ``attn_drop``, ``norm``, ``gate``,
    ``proj`` and ``proj_drop`` under their timm names (same state_dict keys). Its ``q, k, v`` are
    views of one token-major tensor, so the input tokens go into group order (in the copy that
    casts them for ``qkv`` under autocast) and the frames of a group are then a view.
    """

    def __init__(self, attn: Attention, shift: str, fold_div: int) -> None:
        super().__init__(attn.num_heads, attn.head_dim, shift, fold_div)
        self.qkv = attn.qkv
        self.q_norm = attn.q_norm
        self.k_norm = attn.k_norm
        self.attn_drop = attn.attn_drop
        self.norm = attn.norm
        self.gate = attn.gate
        self.proj = attn.proj
        self.proj_drop = attn.proj_drop

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False) -> torch.Tensor:
        """``x (B*T, N, C)`` -> ``(B*T, N, C_out)``."""
        if attn_mask is not None or is_causal:
            raise NotImplementedError("temporal attention does not take an attention mask")
        self.check_frames(x)
        frames, tokens, _ = x.shape
        grouped = self.into_groups(x, compute_dtype(x))
        qkv = self.qkv(grouped).reshape(frames, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        return self.attend_and_project(q, k, v, x)


def convert_vit(model: VisionTransformer, shift: str, fold_div: int) -> list[TemporalAttention]:
    """Replace the attention of every block in place; returns the new modules in block order."""
    if not isinstance(model.patch_drop, nn.Identity):
        raise UnsupportedBackboneError(PATCH_DROPOUT)
    converted = []
    for index, block in enumerate(model.blocks):
        attn = getattr(block, "attn", None)
        if type(attn) is not Attention:
            raise UnsupportedBackboneError(
                f"block {index} of {type(model).__name__} is a {type(block).__name__} with "
                f"{type(attn).__name__}: {_why_not(block, attn)}"
            )
        block.attn = ViTTemporalAttention(attn, shift, fold_div)
        converted.append(block.attn)
    return converted


def _why_not(block: nn.Module, attn: nn.Module | None) -> str:
    """Why a VisionTransformer block is refused, for the error message."""
    if attn is None:
        return f"{_PARALLEL}; use a model with plain blocks"
    return (f"laps converts timm's standard Attention only, and {type(attn).__name__} computes another "
            "attention (differential attention subtracts two softmax maps); use a model with plain blocks")


FAMILY = Family(
    name="VisionTransformer",
    timm_modules=("vision_transformer", "vision_transformer_hybrid", "deit"),  # hybrid: a conv stem before plain blocks
    model_type=VisionTransformer,
    convert=convert_vit,
    filter_checkpoint=checkpoint_filter_fn,
    input_size=patch_embed_size,
    block_pattern=re.compile(r"^blocks\.\d+\."),
    load_npz=lambda model, path: model.load_pretrained(path),  # big_vision weights (timm's _load_weights)
    refused={
        "vit_small_patch16_18x2_224": _PARALLEL, "vit_base_patch16_18x2_224": _PARALLEL,
        "vit_base_patch16_xp_224": _PARALLEL, "vit_large_patch14_xp_224": _PARALLEL,
        "vit_huge_patch14_xp_224": _PARALLEL, "vit_pwee_patch16_reg1_gap_256": _PARALLEL,
        "vit_dpwee_patch16_reg1_gap_256": _PARALLEL,
        "vit_dwee_patch16_reg1_gap_256": _DIFF, "vit_dlittle_patch16_reg1_gap_256": _DIFF,
    },
)
