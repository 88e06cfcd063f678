"""Pure tensor functions of LAPS: frame-group attention, leap attention and the temporal shifts.

Layout conventions:

* attention tensors are ``(B*T, heads, N, d)``; the ``T`` rows of a clip are consecutive;
* a *group schedule* is a partition of the ``T`` frames of a clip into groups whose tokens attend
  jointly. Per-frame 2D attention is ``T`` groups of one frame, Leap Attention is pairs, joint
  space-time attention is one group of all ``T`` frames;
* a *regular* schedule (:class:`GroupLayout`) is one a reshape can express: per-frame, joint, and
  leap pairs when ``T`` is a multiple of ``2s``. Its *group order* puts the frames of every group
  next to each other; in timm's token-major ``qkv`` layout a group of ``g`` frames in that order is
  a view ``(B*T/g, heads, g*N, d)``: no copy.

The fast path of a temporal block is therefore: :func:`to_group_order` (one copy, which can be the
dtype cast that autocast makes anyway), :func:`group_attention` on views, and
:func:`from_group_order`, which writes the output back in clip order with the shift applied in the
same copy. The natural-order functions (:func:`frame_group_attention`, :func:`leap_attention`,
:func:`periodic_shift`, :func:`plain_shift`) are built from the same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from laps.errors import ConfigError, ShapeError

Groups = tuple[tuple[int, ...], ...]
SHIFTS = ("none", "periodic", "plain")


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
    step = leap_step(num_frames, level)
    paired = [False] * num_frames
    groups: list[tuple[int, ...]] = []
    for t in range(num_frames):
        if not paired[t] and t + step < num_frames and not paired[t + step]:
            groups.append((t, t + step))
            paired[t] = paired[t + step] = True
    leftover = [t for t in range(num_frames) if not paired[t]]
    groups.extend(tuple(leftover[i : i + 2]) for i in range(0, len(leftover), 2))
    return tuple(sorted(groups))


def frame_groups(num_frames: int, level: int | None) -> Groups:
    """Group schedule of one attention block: leap pairs for ``level >= 1``, single frames for
    ``None``/``0`` (per-frame attention) and one group of all frames for ``level == -1`` (joint)."""
    _check_num_frames(num_frames)
    if level is None or level == 0:
        return tuple((t,) for t in range(num_frames))
    if level == -1:
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


@dataclass(frozen=True)
class GroupLayout:
    """A regular schedule: blocks of ``size * step`` consecutive frames, each split into ``step``
    groups ``(j, j + step, ..., j + (size-1) * step)``. Clip order views a clip as
    ``(blocks, size, step)``; group order is ``(blocks, step, size)``, the frames of a group adjacent."""

    size: int
    step: int

    @property
    def is_clip_order(self) -> bool:
        """True when group order and clip order coincide (one frame a group, or adjacent frames)."""
        return self.size == 1 or self.step == 1


CLIP_ORDER = GroupLayout(1, 1)


def group_layout(groups: Groups, num_frames: int) -> GroupLayout | None:
    """The :class:`GroupLayout` equal to ``groups``, or ``None`` if the groups are irregular.

    >>> group_layout(leap_groups(8, 2), 8)
    GroupLayout(size=2, step=2)
    """
    groups = check_groups(groups, num_frames)
    size = len(groups[0])
    if any(len(g) != size for g in groups):
        return None
    step = groups[0][1] - groups[0][0] if size > 1 else 1
    if step < 1 or num_frames % (size * step):
        return None
    expected = {
        tuple(block * size * step + j + i * step for i in range(size))
        for block in range(num_frames // (size * step))
        for j in range(step)
    }
    return GroupLayout(size, step) if expected == set(groups) else None


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


def _check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
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


def _attend(q, k, v, size: int, dropout_p: float, scale: float | None) -> torch.Tensor:
    """Attention within groups of ``size`` adjacent rows: ``(R, h, N, d)`` -> ``(R, h, N, d_v)``.

    ``(R, h, N, d)`` -> ``(R/g, h, g*N, d)`` is a view when a row's stride is ``N`` token strides
    (timm's token-major ``qkv``), a copy otherwise; so is the way back for the fused kernels'
    token-major output."""
    grouped = [x.unflatten(0, (-1, size)).transpose(1, 2).flatten(2, 3) for x in (q, k, v)]
    out = F.scaled_dot_product_attention(*grouped, dropout_p=dropout_p, scale=scale)
    return out.unflatten(2, (size, -1)).transpose(1, 2).flatten(0, 1)


def _gather_attention(q, k, v, num_frames: int, groups: Groups, dropout_p: float, scale: float | None):
    """Irregular schedules, in clip order: one attention per group size, on gathered copies."""
    batch, _ = split_clips(q, num_frames, "q")
    heads, tokens, dim_v = v.shape[1:]
    out = v.new_empty(batch, num_frames, tokens, heads, dim_v).transpose(2, 3)  # token-major
    for size in sorted({len(g) for g in groups}):
        index = torch.tensor([g for g in groups if len(g) == size], device=q.device)
        part = [x.unflatten(0, (batch, num_frames))[:, index].transpose(2, 3).flatten(3, 4).flatten(0, 1) for x in (q, k, v)]
        o = F.scaled_dot_product_attention(*part, dropout_p=dropout_p, scale=scale)  # (B*G, h, size*N, d)
        out[:, index] = o.unflatten(0, (batch, -1)).unflatten(3, (size, tokens)).transpose(2, 3)
    return out.flatten(0, 1)


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
    _check_qkv(q, k, v)
    split_clips(q, num_frames, "q")
    if layout is None:
        return _gather_attention(q, k, v, num_frames, groups, dropout_p, scale)
    return _attend(q, k, v, layout.size, dropout_p, scale)


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


def _frame_digits(x: torch.Tensor, num_frames: int, size: int, step: int, group_order: bool) -> torch.Tensor:
    """View ``(B*T, ...)`` as ``(B, blocks, size, step, ...)``: frame ``t`` of a clip at the digits
    of ``t = (block * size + member) * step + j``. For a tensor in group order, a permuted view.
    When group order is clip order, one frame digit: one slice copy a channel group."""
    if size == 1 or step == 1:
        size, step = 1, 1
    if group_order:
        return x.unflatten(0, (-1, num_frames // (size * step), step, size)).transpose(2, 3)
    return x.unflatten(0, (-1, num_frames // (size * step), size, step))


def _shift_frames(dst: torch.Tensor, src: torch.Tensor, step: int) -> None:
    """``dst[frame t] = src[frame t + step]`` (``step`` +1 or -1) on ``(B, blocks, size, step, ...)``
    digit views, zeros where ``t + step`` leaves the clip: frames of different clips never mix.

    One slice copy per digit: the frames whose later digits are all at their last value (first
    value, for -1) move up (down) one in digit ``j`` while the later digits wrap round."""
    last, first = (slice(-1, None), slice(0, 1)) if step > 0 else (slice(0, 1), slice(-1, None))
    keep, move = (slice(None, -1), slice(1, None)) if step > 0 else (slice(1, None), slice(None, -1))
    for digit in (3, 2, 1):
        if dst.shape[digit] > 1:
            outer, later = (slice(None),) * digit, 3 - digit
            dst[outer + (keep,) + (last,) * later] = src[outer + (move,) + (first,) * later]
    dst[(slice(None), last, last, last)] = 0


def _write_frames(dst: torch.Tensor, src: torch.Tensor, fold: int, direction: int) -> None:
    """``dst = src`` on digit views, channels ``[0, fold)`` taken from frame ``t + direction`` and
    ``[fold, 2*fold)`` from ``t - direction`` (``direction`` -1: the adjoint, for the gradient)."""
    if not fold:
        dst.copy_(src)
        return
    _shift_frames(dst[..., :fold], src[..., :fold], direction)
    _shift_frames(dst[..., fold : 2 * fold], src[..., fold : 2 * fold], -direction)
    dst[..., 2 * fold :] = src[..., 2 * fold :]


def _memory_order(x: torch.Tensor) -> tuple[int, ...]:
    """The dims of ``x`` from the slowest- to the fastest-varying in memory."""
    return tuple(sorted(range(x.dim()), key=lambda dim: -x.stride(dim)))


def _shift_along_frames(clips: torch.Tensor, fold: int, direction: int) -> torch.Tensor:
    """``(B, T, ..., C)``: channels ``[0, fold)`` of frame t from frame ``t + direction``, ``[fold, 2*fold)``
    from ``t - direction``, zeros past the clip's ends; out of place (concatenations)."""
    def moved(part: torch.Tensor, by: int) -> torch.Tensor:
        zeros = torch.zeros_like(part[:, :1])
        return torch.cat([part[:, 1:], zeros], 1) if by > 0 else torch.cat([zeros, part[:, :-1]], 1)

    return torch.cat([moved(clips[..., :fold], direction), moved(clips[..., fold:2 * fold], -direction),
                      clips[..., 2 * fold:]], dim=-1)


def _reorder_out_of_place(x, num_frames, size, step, to_groups, fold, direction, dtype) -> torch.Tensor:
    """:func:`_reorder` without writes into a preallocated tensor: for graph exporters (ONNX turns
    slice writes into slow scatters); the values are the same, the layout is contiguous."""
    clips = _frame_digits(x, num_frames, size, step, group_order=not to_groups).flatten(1, 3)  # (B, T, ...) clip order
    if fold:
        clips = _shift_along_frames(clips, fold, direction)
    if to_groups and size > 1 and step > 1:
        clips = clips.unflatten(1, (num_frames // (size * step), size, step)).transpose(2, 3)
    return clips.reshape(x.shape).to(dtype)


def _reorder(x, num_frames, size, step, to_groups, fold, direction, dtype, memory_order) -> torch.Tensor:
    if torch.compiler.is_exporting():
        return _reorder_out_of_place(x, num_frames, size, step, to_groups, fold, direction, dtype)
    out = torch.empty_permuted(x.shape, memory_order, dtype=dtype, device=x.device)
    _write_frames(
        _frame_digits(out, num_frames, size, step, group_order=to_groups),
        _frame_digits(x, num_frames, size, step, group_order=not to_groups),
        fold,
        direction,
    )
    return out


class _Reorder(torch.autograd.Function):
    """Frames from clip order into group order, or back with a shift: one copy forward, the
    adjoint copy backward (in the input's dtype and memory order)."""

    @staticmethod
    def forward(ctx, x, num_frames, size, step, to_groups, fold, dtype, memory_order):
        ctx.args = (num_frames, size, step, not to_groups, fold, -1, x.dtype, _memory_order(x))
        return _reorder(x, num_frames, size, step, to_groups, fold, 1, dtype, memory_order)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        return (_reorder(grad, *ctx.args),) + (None,) * 7


def to_group_order(
    x: torch.Tensor, num_frames: int, layout: GroupLayout, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """``(B*T, ...)`` with each clip's frames in clip order -> the group order of ``layout``, cast
    to ``dtype``: one copy (under autocast, the cast the next layer would make anyway), or ``x``
    itself when neither order nor dtype changes."""
    split_clips(x, num_frames)
    dtype = x.dtype if dtype is None else dtype
    if layout.is_clip_order and dtype == x.dtype:
        return x
    return _Reorder.apply(x, num_frames, layout.size, layout.step, True, 0, dtype, tuple(range(x.dim())))


def from_group_order(
    y: torch.Tensor,
    num_frames: int,
    layout: GroupLayout,
    fold: int = 0,
    memory_order: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """``(B*T, ..., C)`` in the group order of ``layout`` -> clip order, shifted on the way.

    With ``fold > 0`` and ``T > 1``, channels ``[0, fold)`` of frame t take frame t+1's values,
    ``[fold, 2*fold)`` frame t-1's, the rest stay; zeros past the clip's ends. The result is laid
    out with its dims in ``memory_order`` (default: contiguous). One copy (a slice copy per
    channel group and frame digit); ``y`` itself when nothing changes."""
    split_clips(y, num_frames, "y")
    fold = fold if num_frames > 1 else 0  # a single frame has no neighbour: its image stays
    if layout.is_clip_order and not fold and memory_order is None:
        return y
    memory_order = tuple(range(y.dim())) if memory_order is None else tuple(memory_order)
    return _Reorder.apply(y, num_frames, layout.size, layout.step, False, fold, y.dtype, memory_order)


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
    _check_qkv(q, k, v)
    split_clips(q, num_frames, "q")
    groups = check_groups(groups, num_frames)
    layout = group_layout(groups, num_frames)
    order = layout or CLIP_ORDER
    grouped = [to_group_order(x.transpose(1, 2), num_frames, order).transpose(1, 2) for x in (q, k, v)]
    out = group_attention(*grouped, num_frames, groups, layout, dropout_p=dropout_p, scale=scale)
    return from_group_order(out.transpose(1, 2), num_frames, order).transpose(1, 2)


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
