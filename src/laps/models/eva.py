"""timm Eva family (EVA02, DINOv3, Perception Encoder, the rope ViTs ``vit_*_rope_*``): every block's
attention becomes temporal, rotary position embeddings included.

The rotary embedding of a token depends only on its spatial position, and every frame gets the same
one, the embedding the image model gives its tokens. It is applied to ``q`` and ``k`` of each
frame before frames are grouped, so a token keeps its spatial position whichever frame it is
paired with: pair attention over roped tokens, exactly as the image model attends within a frame.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from timm.layers import apply_rot_embed_cat
from timm.layers.attention import AttentionRope
from timm.models.eva import Eva, EvaAttention, checkpoint_filter_fn

from laps.errors import UnsupportedBackboneError
from laps.models.family import Family, patch_embed_size
from laps.models.temporal import PATCH_DROPOUT, TemporalAttention, compute_dtype

_MODULES = ("qkv", "q_proj", "k_proj", "v_proj", "q_norm", "k_norm", "attn_drop", "norm", "gate", "proj", "proj_drop")


def apply_rope(x: torch.Tensor, rope: torch.Tensor, num_prefix_tokens: int, half: bool) -> torch.Tensor:
    """Rotary embedding on the patch tokens of ``x (B*T, heads, N, d)``, the first ``num_prefix_tokens``
    (class, register tokens) left as they are: timm's Eva rule. ``rope`` is ``(N - prefix, 2d)``, or
    ``(heads, N - prefix, 2d)`` for per-head frequencies.

    The result is written token-major, ``(B*T, N, heads, d)`` in memory (as timm's ``qkv``), so the
    frames of a group stay a view for the attention kernel instead of costing a copy each."""
    tokens = x.transpose(1, 2)  # (B*T, N, h, d)
    per_token = (rope if rope.dim() > 2 else rope.unsqueeze(0)).transpose(-3, -2)  # (N - prefix, h or 1, 2d)
    rotated = apply_rot_embed_cat(tokens[:, num_prefix_tokens:], per_token, half=half)
    return torch.cat([tokens[:, :num_prefix_tokens], rotated], dim=1).transpose(1, 2)


class EvaTemporalAttention(TemporalAttention):
    """Temporal version of timm's ``EvaAttention`` and ``AttentionRope`` on tokens ``(B*T, N, C)``.

    Holds the original projections (fused ``qkv`` with EVA's separate ``q_bias``/``v_bias``, or
    ``q_proj``/``k_proj``/``v_proj`` with grouped key/value heads), norms, gate and ``proj`` under
    their timm names: the state_dict keys do not change.
    """

    def __init__(self, attn: EvaAttention | AttentionRope, shift: str, fold_div: int) -> None:
        super().__init__(attn.num_heads, attn.head_dim, shift, fold_div)
        for name in _MODULES:
            setattr(self, name, getattr(attn, name, None))
        self.q_bias = getattr(attn, "q_bias", None)
        self.v_bias = getattr(attn, "v_bias", None)
        self.register_buffer("k_bias", getattr(attn, "k_bias", None), persistent=False)
        self.num_prefix_tokens = attn.num_prefix_tokens
        self.rotate_half = getattr(attn, "rotate_half", False)
        self.kv_groups = getattr(attn, "num_kv_groups", 1)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x (B*T, N, C)`` -> ``q (B*T, heads, N, d)`` and ``k, v (B*T, kv_heads, N, d)``."""
        frames, tokens, _ = x.shape
        if self.qkv is not None:
            bias = None if self.q_bias is None else torch.cat((self.q_bias, self.k_bias, self.v_bias))
            qkv = F.linear(x, self.qkv.weight, self.qkv.bias if bias is None else bias)
            return qkv.reshape(frames, tokens, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return tuple(proj(x).reshape(frames, tokens, -1, self.head_dim).transpose(1, 2)
                     for proj in (self.q_proj, self.k_proj, self.v_proj))

    def forward(self, x: torch.Tensor, rope: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                is_causal: bool = False) -> torch.Tensor:
        """``x (B*T, N, C)`` and the image model's ``rope`` (one embedding for every frame's
        patch tokens) -> ``(B*T, N, C)``."""
        if attn_mask is not None or is_causal:
            raise NotImplementedError("temporal attention does not take an attention mask")
        self.check_frames(x)
        q, k, v = self._project(self.into_groups(x, compute_dtype(x)))
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q = apply_rope(q, rope, self.num_prefix_tokens, self.rotate_half).type_as(v)
            k = apply_rope(k, rope, self.num_prefix_tokens, self.rotate_half).type_as(v)
        if self.kv_groups > 1:
            k, v = k.repeat_interleave(self.kv_groups, dim=1), v.repeat_interleave(self.kv_groups, dim=1)
        return self.attend_and_project(q, k, v, x)


def convert_eva(model: Eva, shift: str, fold_div: int) -> list[TemporalAttention]:
    """Replace the attention of every block in place; returns the new modules in block order."""
    if model.patch_drop is not None:
        raise UnsupportedBackboneError(PATCH_DROPOUT)
    converted = []
    for index, block in enumerate(model.blocks):
        attn = block.attn
        if type(attn) not in (EvaAttention, AttentionRope):
            raise UnsupportedBackboneError(
                f"block {index} of Eva uses {type(attn).__name__}; laps converts timm's EvaAttention and AttentionRope"
            )
        block.attn = EvaTemporalAttention(attn, shift, fold_div)
        converted.append(block.attn)
    return converted


FAMILY = Family(
    name="Eva",
    timm_modules=("eva",),  # EVA02, DINOv3, Perception Encoder, rope ViTs
    model_type=Eva,
    convert=convert_eva,
    filter_checkpoint=checkpoint_filter_fn,
    input_size=patch_embed_size,
    block_pattern=re.compile(r"^blocks\.\d+\."),
)
