"""The core operation of LAPS, frame-group attention with the temporal shifts, in two tiers.

Conventions:

* attention tensors are ``(B*T, heads, N, d)``; the ``T`` rows of a clip are consecutive
  (*clip order*: row ``b*T + t`` is frame ``t`` of clip ``b``);
* a *group schedule* is a partition of the ``T`` frames of a clip into groups whose tokens attend
  jointly. Per-frame 2D attention is ``T`` groups of one frame (level :data:`PER_FRAME`), Leap
  Attention is pairs ``(t, t + s)`` at the *leap* ``s`` of a level >= 1 (:func:`leap`), joint
  space-time attention is one group of all ``T`` frames (level :data:`JOINT`).

**The reference functions** are the specification: they take and return frames in clip order,
check their input and are written to be obviously right rather than fast. They are the schedule
(:func:`leap`, :func:`leap_groups`, :func:`frame_groups`), :func:`frame_group_attention`,
:func:`leap_attention`, :func:`periodic_shift` and :func:`plain_shift`.

**The fast path** is what the temporal blocks of :mod:`laps.models` run
(:class:`laps.models.temporal.TemporalAttention`). A *regular* schedule (:class:`GroupLayout`) is
one a reshape can express: per-frame, joint, and leap pairs when ``T`` is a multiple of
``2 * leap``. Its *group order* lists the groups one after the other, so the frames of a group are
adjacent rows, and in timm's token-major ``qkv`` layout a group of ``g`` adjacent frames is a view
``(B*T/g, heads, g*N, d)``. A block configures itself once per clip length (:func:`group_layout`,
None for an irregular schedule, which computes in clip order: ``order = layout or CLIP_ORDER``;
:func:`shift_fold`); each forward then checks its input once (:func:`split_clips`) and runs,
unchecked:

1. ``reorder(x, Reorder(T, order, to_groups=True, dtype=...))``: the input tokens into group
   order, in the one copy that also makes autocast's dtype cast;
2. :func:`attend_groups`: one ``scaled_dot_product_attention`` call on views (an irregular
   schedule: one call per group size, on gathered copies);
3. ``reorder(out, Reorder(T, order, to_groups=False, fold=..., memory_order=...))``: back to clip
   order with the shift applied in the same copy, laid out as the projection wants.

:class:`GroupLayout`, :data:`CLIP_ORDER`, :class:`Reorder` and :func:`reorder` are defined in
:mod:`laps.frame_order`, which explains how frames move, and are re-exported here.

Worked example, ``T = 8`` at leap level 2 (leap 2, ``GroupLayout(group_size=2, leap=2)``)::

    groups       (0,2) (1,3) (4,6) (5,7)
    clip order   rows hold frames 0 1 2 3 4 5 6 7
    group order  rows hold frames 0 2 1 3 4 6 5 7
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from laps.errors import ConfigError, ShapeError
from laps.frame_order import CLIP_ORDER, GroupLayout, Reorder, reorder, reorder_reference

__all__ = [
    # the schedule
    "Groups", "PER_FRAME", "JOINT", "leap", "leap_groups", "frame_groups",
    # the reference functions: clip order, checked, the specification
    "frame_group_attention", "leap_attention", "periodic_shift", "plain_shift",
    # the fast path the models run (GroupLayout, CLIP_ORDER, Reorder, reorder: from laps.frame_order)
    "GroupLayout", "CLIP_ORDER", "group_layout", "shift_fold", "split_clips", "Reorder", "reorder",
    "attend_groups",
]

Groups = tuple[tuple[int, ...], ...]
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


def _check_groups(groups: Groups, num_frames: int) -> Groups:
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


# --- the schedule --------------------------------------------------------------------------------


def leap(num_frames: int, level: int) -> int:
    """The leap of ``level``: the distance between the two frames of a pair, ``max(1, T // 2**level)``.

    >>> leap(8, 2)
    2
    """
    _check_num_frames(num_frames)
    _check_level(level)
    return max(1, num_frames // 2**level)


def leap_groups(num_frames: int, level: int) -> Groups:
    """Frame pairs of Leap Attention at ``level`` for a clip of ``num_frames`` frames.

    Pairs ``(t, t + s)`` at the leap ``s = max(1, T // 2**level)``, walking ``t`` upwards; frames
    left over pair with each other in ascending order and a single last one stays alone.

    >>> leap_groups(8, 2)
    ((0, 2), (1, 3), (4, 6), (5, 7))
    """
    s = leap(num_frames, level)
    paired = [False] * num_frames
    groups: list[tuple[int, ...]] = []
    for t in range(num_frames):
        if not paired[t] and t + s < num_frames and not paired[t + s]:
            groups.append((t, t + s))
            paired[t] = paired[t + s] = True
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


# --- the reference functions: clip order, checked ------------------------------------------------


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
    token to see only the tokens of its own group. One attention call per group, on the group's
    frames gathered side by side.
    """
    _check_qkv(q, k, v, num_frames)
    groups = _check_groups(groups, num_frames)
    clips = [x.unflatten(0, (-1, num_frames)) for x in (q, k, v)]  # (B, T, h, N, d)
    by_frame: dict[int, torch.Tensor] = {}
    for group in groups:
        joint = [x[:, list(group)].transpose(1, 2).flatten(2, 3) for x in clips]  # (B, h, g*N, d)
        out = F.scaled_dot_product_attention(*joint, dropout_p=dropout_p, scale=scale)
        by_frame.update(zip(group, out.unflatten(2, (len(group), -1)).unbind(2)))  # (B, h, N, d_v) each
    return torch.stack([by_frame[t] for t in range(num_frames)], 1).flatten(0, 1)


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


def _shift(x: torch.Tensor, num_frames: int, fold: int) -> torch.Tensor:
    """``(B*T, ..., C)``: channels ``[0, fold)`` of frame t from frame t+1, ``[fold, 2*fold)`` from
    frame t-1, zeros past the clip's ends; out of place, by :func:`laps.frame_order.reorder_reference`."""
    split_clips(x, num_frames)
    return reorder_reference(x, Reorder(num_frames, CLIP_ORDER, to_groups=False, fold=fold))


def periodic_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """Periodic Shift on ``(B*T, heads, N, d)``: inside every head, channels ``[0, fold)`` of frame
    t take frame t+1's values and ``[fold, 2*fold)`` frame t-1's (``fold = d // fold_div``), zeros
    at the clip's ends; so the shifted channels recur every ``d`` channels. A single-frame clip
    (T=1) is returned unchanged (ours): a T=1 video model computes exactly its image backbone."""
    if x.dim() != 4:
        raise ShapeError(f"periodic_shift expects (B*T, heads, N, d), got shape {tuple(x.shape)}")
    return _shift(x, num_frames, shift_fold(x.shape[-1], fold_div))


def plain_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """TSM-style shift on ``(B*T, ..., C)`` (channels last, e.g. ``(B*T, N, C)``): the first
    ``2 * (C // fold_div)`` channels of the whole channel axis move by one frame, as in
    :func:`periodic_shift`."""
    if x.dim() < 2:
        raise ShapeError(f"plain_shift expects (B*T, ..., C), got shape {tuple(x.shape)}")
    return _shift(x, num_frames, shift_fold(x.shape[-1], fold_div))


# --- the fast path: group order, attention on views ----------------------------------------------


def split_clips(x: torch.Tensor, num_frames: int, name: str = "x") -> tuple[int, torch.Tensor]:
    """View ``(B*T, ...)`` as ``(B, T, ...)``; raises ShapeError if the leading size is not a
    multiple of T. The fast path's one shape check, made once per forward."""
    _check_num_frames(num_frames)
    if x.dim() < 1 or x.shape[0] % num_frames:
        raise ShapeError(
            f"{name} has leading size {x.shape[0] if x.dim() else None}, which is not a multiple of "
            f"num_frames={num_frames}; pass frames as (B*T, ...) with T={num_frames} frames per clip"
        )
    batch = x.shape[0] // num_frames
    return batch, x.unflatten(0, (batch, num_frames))


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


def group_layout(groups: Groups, num_frames: int) -> GroupLayout | None:
    """The :class:`GroupLayout` equal to ``groups``, or ``None`` if the groups are irregular.

    >>> group_layout(leap_groups(8, 2), 8)
    GroupLayout(group_size=2, leap=2)
    """
    groups = _check_groups(groups, num_frames)
    group_size = len(groups[0])
    if any(len(g) != group_size for g in groups):
        return None
    layout = GroupLayout(group_size, groups[0][1] - groups[0][0] if group_size > 1 else 1)
    if layout.leap < 1 or num_frames % (group_size * layout.leap):
        return None
    rows = layout.frames_in_group_order(num_frames)
    expected = {tuple(rows[i : i + group_size]) for i in range(0, num_frames, group_size)}
    return layout if expected == set(groups) else None


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
    """Frame-group attention on frames already in the order the schedule computes in; no checks
    (the caller checked its input once, with :func:`split_clips`).

    Args:
        q, k, v: ``(B*T, heads, N, d)``: in the group order of ``layout`` for a regular schedule,
            in clip order for an irregular one (``layout`` None).
        groups, layout: the schedule and its :func:`group_layout`.
    Returns:
        ``(B*T, heads, N, d_v)`` in the same frame order.

    A regular schedule is one ``scaled_dot_product_attention`` call on views of timm-layout
    ``q, k, v``; an irregular one takes one call per group size, on gathered copies.
    """
    if layout is None:
        return _attend_gathered(q, k, v, num_frames, groups, dropout_p, scale)
    return _attend_adjacent(q, k, v, layout.group_size, dropout_p, scale)
