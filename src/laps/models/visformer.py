"""timm Visformer: the attention blocks of stages 2 and 3 (conv-style, ``(B*T, C, H, W)`` maps)."""

from __future__ import annotations

import re

import torch
from timm.layers import resample_abs_pos_embed_nhwc, to_2tuple
from timm.models.visformer import Attention as VisformerAttention
from timm.models.visformer import Visformer

from laps.models.family import Family, StateDict
from laps.models.temporal import TemporalAttention


class VisformerTemporalAttention(TemporalAttention):
    """Temporal version of Visformer's 1x1-conv attention on maps ``(B*T, C, H, W)``.

    Holds the original ``qkv``, ``attn_drop``, ``proj`` and ``proj_drop`` (same state_dict keys).
    """

    def __init__(self, attn: VisformerAttention, shift: str, fold_div: int) -> None:
        super().__init__(attn.num_heads, attn.head_dim, shift, fold_div)
        self.qkv = attn.qkv
        self.attn_drop = attn.attn_drop
        self.proj = attn.proj
        self.proj_drop = attn.proj_drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B*T, C, H, W)`` -> ``(B*T, C, H, W)``; H*W positions are the tokens."""
        self.check_frames(x)
        frames, _, height, width = x.shape
        qkv = self.qkv(x).reshape(frames, 3, self.num_heads, self.head_dim, -1).permute(1, 0, 2, 4, 3)
        # (B*T, heads, H*W, d), token-major in group order: the copies a fused attention needs anyway
        q, k, v = (self._token_major(part) for part in qkv.unbind(0))
        out = self.mix(q, k, v, self.attn_drop.p if self.training else 0.0, channels_first=True)
        out = out.transpose(1, 2).reshape(frames, -1, height, width)  # a view: mix wrote (B*T, C, H*W)
        return self.proj_drop(self.proj(out))

    def _token_major(self, x: torch.Tensor) -> torch.Tensor:
        return self.into_groups(x.transpose(1, 2)).contiguous().transpose(1, 2)


def convert_visformer(model: Visformer, shift: str, fold_div: int) -> list[TemporalAttention]:
    """Replace the attention of every stage-2/3 block that has one, in place, in block order."""
    converted = []
    for stage in (model.stage2, model.stage3):
        for block in stage:
            if isinstance(getattr(block, "attn", None), VisformerAttention):
                block.attn = VisformerTemporalAttention(block.attn, shift, fold_div)
                converted.append(block.attn)
    return converted


def filter_checkpoint(state_dict: StateDict, model: Visformer) -> StateDict:
    """A Visformer checkpoint for ``model``: each position-embedding map ``pos_embed{1,2,3}``
    ``(1, C, H, W)`` resampled to the model's grid with timm's ``resample_abs_pos_embed_nhwc``
    (bicubic, antialiased), as timm resamples a ViT's; every other tensor as it is. (timm itself
    has no filter for Visformer.)"""
    own = model.state_dict()
    out = {}
    for key, value in state_dict.items():
        target = own.get(key)
        if key.startswith("pos_embed") and target is not None and value.dim() == 4 and value.shape != target.shape:
            value = resample_abs_pos_embed_nhwc(value.permute(0, 2, 3, 1), list(target.shape[-2:])).permute(0, 3, 1, 2)
        out[key] = value
    return out


def input_size(model: Visformer) -> tuple[int, int]:
    """The frame size a Visformer takes: the ``img_size`` it was built for."""
    return to_2tuple(model.img_size)


FAMILY = Family(
    name="Visformer",
    timm_modules=("visformer",),
    model_type=Visformer,
    convert=convert_visformer,
    filter_checkpoint=filter_checkpoint,
    input_size=input_size,
    block_pattern=re.compile(r"^stage\d+\.\d+\."),  # stage1's conv blocks, then stage2's and stage3's attention blocks
    norms={"visformer": ((0.486, 0.457, 0.407), (0.229, 0.224, 0.225))},  # the Visformer paper's statistics
)
