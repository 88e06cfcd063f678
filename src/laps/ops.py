"""Pure tensor functions of LAPS: frame-group attention, leap attention and the temporal shifts.

Conventions:

* attention tensors are ``(B*T, heads, N, d)``; the ``T`` rows of a clip are consecutive;
* a *group schedule* is a partition of the ``T`` frames of a clip into groups whose tokens attend
  jointly. Per-frame 2D attention is ``T`` groups of one frame (level :data:`PER_FRAME`), Leap
  Attention is pairs (levels >= 1), joint space-time attention is one group of all ``T`` frames
  (level :data:`JOINT`);
* a *regular* schedule (:class:`GroupLayout`) is one a reshape can express: per-frame, joint, and
  leap pairs when ``T`` is a multiple of ``2 * leap``. Its *group order* lists the groups one after
  the other, so the frames of a group are adjacent rows. In timm's token-major ``qkv`` layout a
  group of ``g`` adjacent frames is then a view ``(B*T/g, heads, g*N, d)``: attention needs no copy.

Worked example, ``T = 8`` at leap level 2 (``GroupLayout(group_size=2, leap=2)``)::

    groups       (0,2) (1,3) (4,6) (5,7)
    clip order   rows hold frames 0 1 2 3 4 5 6 7
    group order  rows hold frames 0 2 1 3 4 6 5 7

A temporal block moves its input tokens into group order (:func:`to_group_order`: one copy, which
is also the dtype cast autocast makes anyway), attends on views (:func:`group_attention`) and
writes the output back into clip order with the shift applied in the same copy
(:func:`from_group_order`). How frames move, and the shift's write-back worked out for the example
above, is in :mod:`laps.frame_order`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from laps.errors import ConfigError, ShapeError
from laps.frame_order import CLIP_ORDER, GroupLayout, Reorder, reorder

Groups = tuple[tuple[int, ...], ...]
SHIFTS = ("none", "periodic", "plain")
#: level of plain per-frame (2D) attention; ``None`` in a level schedule means the same
PER_FRAME = 0
#: level of joint space-time attention: one group of all the frames of a clip
JOINT = -1


def _check_num_frames(num_frames: int) -> None:
    if not isinstance(num_frames, int) or num_frames < 1:
        raise ConfigError(f"num_frames must be an integer >= 1, got {num_frames!r}")


def _check_level(level: int) -> None:
    if not isinstance(level, int) or level < 1:
        raise ConfigError(
            f"leap level must be an integer >= 1, got {level!r}; use None or 0 in a level "
            "schedule for plain per-frame attention"
        )


def leap_step(num_frames: int, level: int) -> int:
    """Distance between the two frames of a leap pair: ``max(1, T // 2**level)``."""
    _check_num_frames(num_frames)
    _check_level(level)
    return max(1, num_frames // 2**level)


def leap_groups(num_frames: int, level: int) -> Groups:
    """Frame pairs of Leap Attention at ``level`` for a clip of ``num_frames`` frames.

    Pairs ``(t, t + s)`` with ``s = max(1, T // 2**level)``, walking ``t`` upwards; frames left
    over pair with each other in ascending order and a single last one stays alone.

    >>> leap_groups(8, 2)
    ((0, 2), (1, 3), (4, 6), (5, 7))
    """
    distance = leap_step(num_frames, level)
    paired = [False] * num_frames
    groups: list[tuple[int, ...]] = []
    for t in range(num_frames):
        if not paired[t] and t + distance < num_frames and not paired[t + distance]:
            groups.append((t, t + distance))
            paired[t] = paired[t + distance] = True
    leftover = [t for t in range(num_frames) if not paired[t]]
    groups.extend(tuple(leftover[i : i + 2]) for i in range(0, len(leftover), 2))
    return tuple(sorted(groups))


def frame_groups(num_frames: int, level: int | None) -> Groups:
    """Group schedule of one attention block: leap pairs for ``level >= 1``, single frames for
    ``None``/:data:`PER_FRAME`, one group of all frames for :data:`JOINT`."""
    _check_num_frames(num_frames)
    if level is None or level == PER_FRAME:
        return tuple((t,) for t in range(num_frames))
    if level == JOINT:
        return (tuple(range(num_frames)),)
    return leap_groups(num_frames, level)


def check_groups(groups: Groups, num_frames: int) -> Groups:
    """``groups`` as tuples of ints; raises ConfigError unless they partition ``range(num_frames)``."""
    _check_num_frames(num_frames)
    groups = tuple(tuple(int(t) for t in g) for g in groups)
    flat = sorted(t for g in groups for t in g)
    if flat != list(range(num_frames)) or any(len(g) == 0 for g in groups):
        raise ConfigError(
            f"groups {groups} are not a partition of the {num_frames} frames 0..{num_frames - 1}; "
            "each frame must appear in exactly one group"
        )
    return groups


def group_layout(groups: Groups, num_frames: int) -> GroupLayout | None:
    """The :class:`GroupLayout` equal to ``groups``, or ``None`` if the groups are irregular.

    >>> group_layout(leap_groups(8, 2), 8)
    GroupLayout(group_size=2, leap=2)
    """
    groups = check_groups(groups, num_frames)
    group_size = len(groups[0])
    if any(len(g) != group_size for g in groups):
        return None
    leap = groups[0][1] - groups[0][0] if group_size > 1 else 1
    if leap < 1 or num_frames % (group_size * leap):
        return None
    layout = GroupLayout(group_size, leap)
    rows = layout.frames_in_group_order(num_frames)
    expected = {tuple(rows[i : i + group_size]) for i in range(0, num_frames, group_size)}
    return layout if expected == set(groups) else None


def split_clips(x: torch.Tensor, num_frames: int, name: str = "x") -> tuple[int, torch.Tensor]:
    """View ``(B*T, ...)`` as ``(B, T, ...)``; raises if the leading size is not a multiple of T."""
    _check_num_frames(num_frames)
    if x.dim() < 1 or x.shape[0] % num_frames:
        raise ShapeError(
            f"{name} has leading size {x.shape[0] if x.dim() else None}, which is not a multiple of "
            f"num_frames={num_frames}; pass frames as (B*T, ...) with T={num_frames} frames per clip"
        )
    batch = x.shape[0] // num_frames
    return batch, x.unflatten(0, (batch, num_frames))


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_frames: int) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ShapeError(
            f"q, k, v must be 4-D (B*T, heads, N, d), got shapes {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[:3] != k.shape[:3] or k.shape[:3] != v.shape[:3] or q.shape[-1] != k.shape[-1]:
        raise ShapeError(
            f"q, k, v shapes disagree: {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}; "
            "they must share (B*T, heads, N) and q, k the head dim"
        )
    split_clips(q, num_frames, "q")


# --- attention within groups --------------------------------------------------------------------


def _attend_adjacent(q, k, v, group_size: int, dropout_p: float, scale: float | None) -> torch.Tensor:
    """Attention within groups of ``group_size`` adjacent rows: ``(R, h, N, d)`` -> ``(R, h, N, d_v)``.

    ``(R, h, N, d)`` -> ``(R/g, h, g*N, d)`` is a view when a row's stride is ``N`` token strides
    (timm's token-major ``qkv``), a copy otherwise; so is the way back for the fused kernels'
    token-major output."""
    grouped = [x.unflatten(0, (-1, group_size)).transpose(1, 2).flatten(2, 3) for x in (q, k, v)]
    out = F.scaled_dot_product_attention(*grouped, dropout_p=dropout_p, scale=scale)
    return out.unflatten(2, (group_size, -1)).transpose(1, 2).flatten(0, 1)


def _attend_gathered(q, k, v, num_frames: int, groups: Groups, dropout_p: float, scale: float | None):
    """Irregular schedules, in clip order: one attention per group size, on gathered copies."""
    batch = q.shape[0] // num_frames
    heads, tokens, dim_v = v.shape[1:]
    out = v.new_empty(batch, num_frames, tokens, heads, dim_v).transpose(2, 3)  # token-major
    for size in sorted({len(g) for g in groups}):
        index = torch.tensor([g for g in groups if len(g) == size], device=q.device)
        part = [x.unflatten(0, (batch, num_frames))[:, index].transpose(2, 3).flatten(3, 4).flatten(0, 1)
                for x in (q, k, v)]
        o = F.scaled_dot_product_attention(*part, dropout_p=dropout_p, scale=scale)  # (B*G, h, size*N, d)
        out[:, index] = o.unflatten(0, (batch, -1)).unflatten(3, (size, tokens)).transpose(2, 3)
    return out.flatten(0, 1)


def attend_groups(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_frames: int, groups: Groups,
                  layout: GroupLayout | None, dropout_p: float = 0.0, scale: float | None = None) -> torch.Tensor:
    """:func:`group_attention` without the shape checks, for callers that checked their input once."""
    if layout is None:
        return _attend_gathered(q, k, v, num_frames, groups, dropout_p, scale)
    return _attend_adjacent(q, k, v, layout.group_size, dropout_p, scale)


def group_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_frames: int,
    groups: Groups,
    layout: GroupLayout | None,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Frame-group attention on frames already in the order the schedule computes in.

    Args:
        q, k, v: ``(B*T, heads, N, d)``: in the group order of ``layout`` for a regular schedule,
            in clip order for an irregular one (``layout`` None).
        groups, layout: the schedule and its :func:`group_layout`.
    Returns:
        ``(B*T, heads, N, d_v)`` in the same frame order.

    A regular schedule is one ``scaled_dot_product_attention`` call on views of timm-layout
    ``q, k, v``; an irregular one takes one call per group size, on gathered copies.
    """
    _check_qkv(q, k, v, num_frames)
    return attend_groups(q, k, v, num_frames, groups, layout, dropout_p, scale)


# --- moving frames between clip order and group order, with the shift ------------------------


def shift_fold(channels: int, fold_div: int) -> int:
    """Channels moved in each direction: ``channels // fold_div``; raises if that is zero."""
    if not isinstance(fold_div, int) or fold_div < 2:
        raise ConfigError(f"fold_div must be an integer >= 2, got {fold_div!r}")
    fold = int(channels) // fold_div  # int(): torch.jit tracing (fvcore) gives sizes as tensors
    if fold < 1:
        raise ConfigError(
            f"fold_div={fold_div} leaves no channel to shift in {channels} channels; "
            f"use fold_div <= {channels}"
        )
    return fold


def to_group_order(
    x: torch.Tensor, num_frames: int, layout: GroupLayout, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``(B*T, ...)`` with each clip's frames in clip order -> the group order of ``layout``, cast
    to ``dtype``: one copy (under autocast, the cast the next layer would make anyway), or ``x``
    itself when neither order nor dtype changes."""
    split_clips(x, num_frames)
    return reorder(x, Reorder(num_frames, layout, to_groups=True, dtype=dtype))


def from_group_order(
    y: torch.Tensor,
    num_frames: int,
    layout: GroupLayout,
    fold: int = 0,
    memory_order: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """``(B*T, ..., C)`` in the group order of ``layout`` -> clip order, shifted on the way.

    With ``fold > 0`` and ``T > 1``, channels ``[0, fold)`` of frame t take frame t+1's values,
    ``[fold, 2*fold)`` frame t-1's, the rest stay; zeros past the clip's ends (a single frame has
    no neighbour: its values stay). The result is laid out with its dims in ``memory_order``
    (default: contiguous). One copy; ``y`` itself when nothing changes."""
    split_clips(y, num_frames, "y")
    memory_order = None if memory_order is None else tuple(memory_order)
    return reorder(y, Reorder(num_frames, layout, to_groups=False, fold=fold, memory_order=memory_order))


# --- the natural-order functions ---------------------------------------------------------------


def frame_group_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_frames: int,
    groups: Groups,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Attention where the tokens of each frame group attend jointly over the group's tokens.

    Args:
        q, k, v: ``(B*T, heads, N, d)`` in clip order; any strides.
        num_frames: ``T``, frames per clip.
        groups: a partition of ``range(T)``, e.g. ``leap_groups(T, level)``.
    Returns:
        ``(B*T, heads, N, d_v)``, each frame's output in its own row.

    Equals joint attention over all ``T*N`` tokens of a clip with a block mask that allows a
    token to see only the tokens of its own group: :func:`to_group_order`,
    :func:`group_attention` and :func:`from_group_order`.
    """
    _check_qkv(q, k, v, num_frames)
    groups = check_groups(groups, num_frames)
    layout = group_layout(groups, num_frames)
    order = layout or CLIP_ORDER
    grouped = [reorder(x.transpose(1, 2), Reorder(num_frames, order, to_groups=True)).transpose(1, 2)
               for x in (q, k, v)]
    out = attend_groups(*grouped, num_frames, groups, layout, dropout_p=dropout_p, scale=scale)
    return reorder(out.transpose(1, 2), Reorder(num_frames, order, to_groups=False)).transpose(1, 2)


def leap_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_frames: int,
    level: int,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """Leap Attention: frame-group attention over ``leap_groups(T, level)``.

    ``q, k, v``: ``(B*T, heads, N, d)`` -> ``(B*T, heads, N, d_v)``.
    """
    _check_level(level)
    return frame_group_attention(
        q, k, v, num_frames, leap_groups(num_frames, level), dropout_p=dropout_p, scale=scale
    )


def periodic_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """Periodic Shift on ``(B*T, heads, N, d)``: inside every head, channels ``[0, fold)`` of frame
    t take frame t+1's values and ``[fold, 2*fold)`` frame t-1's (``fold = d // fold_div``), zeros
    at the clip's ends; so the shifted channels recur every ``d`` channels. A single-frame clip
    (T=1) is returned unchanged (ours): a T=1 video model computes exactly its image backbone."""
    if x.dim() != 4:
        raise ShapeError(f"periodic_shift expects (B*T, heads, N, d), got shape {tuple(x.shape)}")
    return from_group_order(x, num_frames, CLIP_ORDER, shift_fold(x.shape[-1], fold_div))


def plain_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """TSM-style shift on ``(B*T, ..., C)`` (channels last, e.g. ``(B*T, N, C)``): the first
    ``2 * (C // fold_div)`` channels of the whole channel axis move by one frame, as in
    :func:`periodic_shift`."""
    if x.dim() < 2:
        raise ShapeError(f"plain_shift expects (B*T, ..., C), got shape {tuple(x.shape)}")
    return from_group_order(x, num_frames, CLIP_ORDER, shift_fold(x.shape[-1], fold_div))
