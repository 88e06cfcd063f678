"""Temporal attention: a timm attention module's own weights, run as frame-group attention.

A :class:`TemporalAttention` takes over the ``qkv``/``proj`` (and norm) submodules of an image
attention module under the same attribute names, so the model's ``state_dict`` keys do not
change and no parameter is added. It attends over the frame groups of its level and applies
the model's shift to the attention output before the projection.

A variant (:data:`laps.variants.VARIANTS`) names an attention kind and a shift kind; what each kind
does is its entry in :data:`ATTENTION_KINDS` or :data:`SHIFT_KINDS`, and nothing else here names a kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from laps import ops
from laps.errors import ConfigError
from laps.variants import VARIANTS

#: why a backbone built with patch dropout is refused
PATCH_DROPOUT = ("patch dropout keeps different patches in every frame, so frames no longer share token positions "
                 "for the shift and the pairs; build the backbone with patch_drop_rate=0")


def check_variant(temporal: str) -> tuple[str, str]:
    """``(attention kind, shift kind)`` of a variant name; raises ConfigError for unknown ones."""
    if temporal not in VARIANTS:
        raise ConfigError(f"unknown temporal variant {temporal!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[temporal]


def default_levels(num_frames: int, num_blocks: int) -> list[int]:
    """Default Leap Attention schedule: cycle ``1..floor(log2 T)`` (at least 1) over the blocks.

    >>> default_levels(8, 8)
    [1, 2, 3, 1, 2, 3, 1, 2]
    """
    top = max(1, int(math.log2(num_frames))) if num_frames >= 1 else 1
    return [1 + i % top for i in range(num_blocks)]


def leap_levels(num_frames: int, num_blocks: int, levels: list[int | None] | None) -> list[int | None]:
    """The leap level of every block: ``levels`` checked (``None``/0 per-frame), else :func:`default_levels`."""
    if levels is None:
        return list(default_levels(num_frames, num_blocks))
    if len(levels) != num_blocks:
        raise ConfigError(
            f"levels has {len(levels)} entries but the model has {num_blocks} attention blocks; "
            "give one level (or None for per-frame attention) per attention block"
        )
    for level in levels:
        if level not in (None, ops.PER_FRAME) and (not isinstance(level, int) or level < 1):
            raise ConfigError(f"level {level!r} is invalid; levels must be >= 1, or None/0")
    return [None if level in (None, ops.PER_FRAME) else level for level in levels]


#: a block schedule: ``(num_frames, num_blocks, levels)`` -> the level of every attention block
#: (``None`` per-frame, :data:`ops.JOINT` joint, ``l >= 1`` leap pairs at level ``l``)
Schedule = Callable[[int, int, "list[int | None] | None"], "list[int | None]"]


@dataclass(frozen=True)
class ShiftKind:
    """How a shift moves channels over time: ``fold(num_heads, head_dim, fold_div)`` channels each
    way, counted in each head (``across_heads=False``) or along all heads' channels at once."""

    fold: Callable[[int, int, int], int]
    across_heads: bool = False


#: attention kind -> its block schedule
ATTENTION_KINDS: dict[str, Schedule] = {
    "frame": lambda num_frames, num_blocks, levels: [None] * num_blocks,  # per-frame 2D attention
    "joint": lambda num_frames, num_blocks, levels: [ops.JOINT] * num_blocks,  # all frames of a clip together
    "leap": leap_levels,  # Leap Attention, one leap level per block
}
#: shift kind -> how it moves channels
SHIFT_KINDS: dict[str, ShiftKind] = {
    "none": ShiftKind(lambda heads, head_dim, fold_div: 0),
    "periodic": ShiftKind(lambda heads, head_dim, fold_div: ops.shift_fold(head_dim, fold_div)),  # Periodic Shift
    "plain": ShiftKind(lambda heads, head_dim, fold_div: ops.shift_fold(heads * head_dim, fold_div),
                       across_heads=True),  # TSM-style
}


def block_levels(
    temporal: str, num_frames: int, num_blocks: int, levels: list[int | None] | None
) -> list[int | None]:
    """Level of every attention block for a variant: ``None`` = per-frame, :data:`ops.JOINT` = joint."""
    attention, _ = check_variant(temporal)
    return ATTENTION_KINDS[attention](num_frames, num_blocks, levels)


class TemporalAttention(nn.Module):
    """Shared machinery of the temporal attention modules.

    Subclasses turn the block input into ``q, k, v`` of shape ``(B*T, heads, N, d)`` with the
    frames in :attr:`order` (the group order of a regular schedule, see :mod:`laps.ops`), and the
    mixed output back; :meth:`mix` does frame-group attention and writes the output in clip
    order with the shift applied, in one copy.

    A subclass takes over the submodules of the image attention it replaces, under their timm
    names, and sets those the base class uses: :attr:`attn_drop`, :attr:`proj` and
    :attr:`proj_drop` always; :attr:`norm` and :attr:`gate` too when it ends with
    :meth:`attend_and_project` (timm's token attentions).
    """

    #: the attention dropout; its ``p`` is applied to the attention weights while training
    attn_drop: nn.Dropout
    #: the output projection, and the dropout after it
    proj: nn.Module
    proj_drop: nn.Module
    #: applied to the mixed heads before ``proj`` (``nn.Identity`` when the image model has none)
    norm: nn.Module
    #: ``None``, or a projection of the block input whose sigmoid scales the mixed heads
    gate: nn.Module | None

    def __init__(self, num_heads: int, head_dim: int, shift: str, fold_div: int) -> None:
        super().__init__()
        if shift not in SHIFT_KINDS:
            raise ConfigError(f"unknown shift {shift!r}; choose one of {', '.join(SHIFT_KINDS)}")
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.shift = shift
        self.fold_div = fold_div
        self.across_heads = SHIFT_KINDS[shift].across_heads
        self.fold = SHIFT_KINDS[shift].fold(num_heads, head_dim, fold_div)
        self.set_frames(1, None)

    def set_frames(self, num_frames: int, level: int | None) -> None:
        """Configure for clips of ``num_frames`` frames at ``level`` (None per-frame, ops.JOINT joint)."""
        self.num_frames = num_frames
        self.level = level
        self.groups = ops.frame_groups(num_frames, level)
        self.layout = ops.group_layout(self.groups, num_frames)  # None: irregular, computed in clip order
        self.order = self.layout or ops.CLIP_ORDER

    def check_frames(self, x: torch.Tensor) -> None:
        """The one shape check of a forward: ``x (B*T, ...)`` holds whole clips of :attr:`num_frames`."""
        ops.split_clips(x, self.num_frames)

    def into_groups(self, x: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """``(B*T, ...)`` in clip order -> :attr:`order`, cast to ``dtype``: one copy at most."""
        return ops.reorder(x, ops.Reorder(self.num_frames, self.order, to_groups=True, dtype=dtype))

    def mix(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float, channels_first: bool = False
    ) -> torch.Tensor:
        """``q, k, v (B*T, heads, N, d)`` in :attr:`order` -> ``(B*T, N, heads*d)`` in clip order:
        grouped attention, then the shift while the frames go back; laid out in memory as
        ``(B*T, heads*d, N)`` if ``channels_first``."""
        out = ops.attend_groups(q, k, v, self.num_frames, self.groups, self.layout, dropout_p)
        out = out.transpose(1, 2)  # (B*T, N, h, d)
        if self.across_heads:
            out = out.flatten(2)
        memory_order = (0, *range(2, out.dim()), 1) if channels_first else None
        back = ops.Reorder(self.num_frames, self.order, to_groups=False, fold=self.fold, memory_order=memory_order)
        return ops.reorder(out, back).flatten(2)

    def attend_and_project(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The output side of timm's token attentions (``Attention``, ``EvaAttention``, ``AttentionRope``):
        :meth:`mix`, then the module's ``norm``, ``gate`` (on the block input ``x (B*T, N, C)``), ``proj``
        and ``proj_drop`` -> ``(B*T, N, C_out)``."""
        out = self.norm(self.mix(q, k, v, self.attn_drop.p if self.training else 0.0))
        if self.gate is not None:
            out = out * self.gate(x).sigmoid()
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, frames={self.num_frames}, level={self.level}, shift={self.shift}"


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a linear layer computes ``x`` in: autocast's where it is on, else ``x``'s."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
