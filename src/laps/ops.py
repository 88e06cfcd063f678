"""Pure tensor functions of LAPS: frame-group attention, leap attention and the shifts.

Layout conventions (see ``LAPS_SPEC.md``):

* attention tensors are ``(B*T, heads, N, d)``, row ``b*T + t`` being frame ``t`` of clip ``b``;
* a *group schedule* is a partition of the ``T`` frames of a clip into groups; the tokens of a
  group attend jointly. Per-frame 2D attention is ``T`` groups of one frame, Leap Attention is
  pairs, joint space-time attention is one group of all ``T`` frames.

Every function here is differentiable, dtype-agnostic and free of Python loops over frames,
pairs or clips, so it runs under ``torch.compile``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from laps.errors import ConfigError, ShapeError

Groups = tuple[tuple[int, ...], ...]


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


@dataclass(frozen=True)
class _StridedLayout:
    """Groups that a reshape can express: blocks of ``size * stride`` consecutive frames, each
    split into ``stride`` groups ``(j, j + stride, ..., j + (size-1) * stride)``."""

    size: int
    stride: int


def _layout(groups: Groups, num_frames: int) -> _StridedLayout | None:
    """The strided layout equal to ``groups``, or ``None`` if the groups are irregular."""
    size = len(groups[0])
    if any(len(g) != size for g in groups) or num_frames % size:
        return None
    stride = groups[0][1] - groups[0][0] if size > 1 else 1
    if stride < 1 or num_frames % (size * stride):
        return None
    expected = {
        tuple(block * size * stride + j + i * stride for i in range(size))
        for block in range(num_frames // (size * stride))
        for j in range(stride)
    }
    return _StridedLayout(size, stride) if expected == set(groups) else None


def _validate_groups(groups: Groups, num_frames: int) -> Groups:
    groups = tuple(tuple(int(t) for t in g) for g in groups)
    flat = sorted(t for g in groups for t in g)
    if flat != list(range(num_frames)) or any(len(g) == 0 for g in groups):
        raise ConfigError(
            f"groups {groups} are not a partition of the {num_frames} frames 0..{num_frames - 1}; "
            "each frame must appear in exactly one group"
        )
    return groups


def split_clips(x: torch.Tensor, num_frames: int, name: str = "x") -> tuple[int, torch.Tensor]:
    """View ``(B*T, ...)`` as ``(B, T, ...)``; raises if the leading size is not a multiple of T."""
    _check_num_frames(num_frames)
    if x.shape[0] % num_frames:
        raise ShapeError(
            f"{name} has leading size {x.shape[0]}, which is not a multiple of num_frames="
            f"{num_frames}; pass frames as (B*T, ...) with T={num_frames} frames per clip"
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


def group_frames(x: torch.Tensor, batch: int, layout: _StridedLayout) -> torch.Tensor:
    """``(B*T, h, N, d)`` (any strides) -> ``(B*T/g, h, g*N, d)``, the frames of each group
    concatenated along tokens. One reshape, no index gather."""
    num_frames = x.shape[0] // batch
    g, s = layout.size, layout.stride
    x = x.unflatten(0, (batch, num_frames // (g * s), g, s))  # (B, blocks, g, s, h, N, d)
    x = x.permute(0, 1, 3, 4, 2, 5, 6)  # (B, blocks, s, h, g, N, d)
    return x.flatten(0, 2).flatten(2, 3)


def ungroup_frames(y: torch.Tensor, batch: int, layout: _StridedLayout) -> torch.Tensor:
    """Inverse of :func:`group_frames` as a view: ``(B*T/g, h, g*N, d)`` ->
    ``(B, blocks, g, s, N, h, d)``, whose frame dims ``(blocks, g, s)`` flattened row-major are
    the frames in clip order (they cannot be merged into one dim without a copy)."""
    g, s = layout.size, layout.stride
    y = y.unflatten(0, (batch, -1, s)).unflatten(4, (g, -1))  # (B, blocks, s, h, g, N, d)
    return y.permute(0, 1, 4, 2, 5, 3, 6)


def _split_frame_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_frames: int,
    groups: Groups,
    dropout_p: float,
    scale: float | None,
) -> torch.Tensor:
    """Frame-group attention whose output frames are left where the attention wrote them.

    ``q, k, v (B*T, h, N, d)`` -> ``(B, *F, N, h, d_v)``, a view of the attention output (no
    copy) where the frame dims ``F`` (``(T,)`` or ``(blocks, g, s)``), flattened row-major,
    index the frames of a clip in order. :func:`frame_group_attention` and
    :func:`temporal_mix` put it in their layouts with at most one copy.
    """
    _check_qkv(q, k, v)
    batch, _ = split_clips(q, num_frames, "q")
    groups = _validate_groups(groups, num_frames)
    layout = _layout(groups, num_frames)
    if layout is None:
        out = _irregular_group_attention(q, k, v, batch, num_frames, groups, dropout_p, scale)
        return out.transpose(2, 3)
    if layout.size == 1:
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale)
        return out.unflatten(0, (batch, num_frames)).transpose(2, 3)
    out = F.scaled_dot_product_attention(
        group_frames(q, batch, layout),
        group_frames(k, batch, layout),
        group_frames(v, batch, layout),
        dropout_p=dropout_p,
        scale=scale,
    )
    return ungroup_frames(out, batch, layout)


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
        q, k, v: ``(B*T, heads, N, d)``; any strides.
        num_frames: ``T``, frames per clip.
        groups: a partition of ``range(T)``, e.g. ``leap_groups(T, level)``.
    Returns:
        ``(B*T, heads, N, d_v)``, each frame's output in its own row.

    Equals joint attention over all ``T*N`` tokens of a clip with a block mask that allows a
    token to see only the tokens of its own group. One ``scaled_dot_product_attention`` call
    per distinct group size; regular schedules (per-frame, leap pairs with ``T % 2s == 0``,
    joint) are pure reshapes, irregular ones gather frames with one index per group size.
    """
    out = _split_frame_attention(q, k, v, num_frames, groups, dropout_p, scale).transpose(-3, -2)
    return out.reshape(q.shape[0], *out.shape[-3:])  # a copy only for groups of several frames


def temporal_mix(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    num_frames: int,
    groups: Groups,
    shift: str = "none",
    fold_div: int = 4,
    dropout_p: float = 0.0,
    scale: float | None = None,
) -> torch.Tensor:
    """The token mixing of a temporal attention block, before its output projection.

    ``q, k, v (B*T, h, N, d)`` -> ``(B*T, N, h*d_v)``, contiguous: :func:`frame_group_attention`
    over ``groups``, heads merged into channels, then ``shift`` (``"none"``, ``"periodic"`` as in
    :func:`periodic_shift` or ``"plain"`` as in :func:`plain_shift`). The frames are put back in
    clip order and shifted while being written, in one copy, where the separate functions
    would take up to three.
    """
    out = _split_frame_attention(q, k, v, num_frames, groups, dropout_p, scale)  # (B, *F, N, h, d)
    frame_dims = out.dim() - 4
    if shift == "plain":
        out = out.flatten(-2)  # (B, *F, N, C); a copy unless the heads are already adjacent
    if shift != "none" and num_frames > 1:
        out = _ShiftedCopy.apply(out, frame_dims, shift_fold(out.shape[-1], fold_div))
    return out.reshape(q.shape[0], q.shape[2], -1)  # a view after a shift or per-frame attention


def _irregular_group_attention(q, k, v, batch, num_frames, groups, dropout_p, scale):
    """Frame-group attention by index gathers, one SDPA per group size -> ``(B, T, h, N, d_v)``."""
    heads, tokens, dim_v = v.shape[1], v.shape[2], v.shape[3]
    out = v.new_empty((batch, num_frames, heads, tokens, dim_v))
    for size in sorted({len(g) for g in groups}):
        index = torch.tensor([g for g in groups if len(g) == size], device=q.device)

        def gather(x: torch.Tensor) -> torch.Tensor:
            x = x.unflatten(0, (batch, num_frames))[:, index]  # (B, G, size, h, N, d)
            return x.transpose(2, 3).flatten(3, 4).flatten(0, 1)  # (B*G, h, size*N, d)

        o = F.scaled_dot_product_attention(
            gather(q), gather(k), gather(v), dropout_p=dropout_p, scale=scale
        )
        out[:, index] = o.unflatten(0, (batch, -1)).unflatten(3, (size, tokens)).transpose(2, 3)
    return out


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


def _move_frames(dst: torch.Tensor, src: torch.Tensor, frame_dims: int, step: int) -> None:
    """``dst[frame t] = src[frame t + step]`` for ``step`` = +1 or -1, zeros where ``t + step``
    leaves the clip, on ``(B, *F, ...)`` tensors whose ``frame_dims`` dims ``F`` (row-major) hold
    the frame index. One slice copy per frame dim: when ``t + step`` carries over to frame dim
    ``j``, every later frame dim jumps from its last index to its first (or back)."""
    dst_inner, src_inner = (slice(-1, None), slice(0, 1)) if step > 0 else (slice(0, 1), slice(-1, None))
    dst_j, src_j = (slice(None, -1), slice(1, None)) if step > 0 else (slice(1, None), slice(None, -1))
    for j in range(1, frame_dims + 1):
        later = frame_dims - j
        if dst.shape[j] > 1:
            outer = (slice(None),) * j
            dst[outer + (dst_j,) + (dst_inner,) * later] = src[outer + (src_j,) + (src_inner,) * later]
    dst[(slice(None),) + (dst_inner,) * frame_dims] = 0


def _copy_shifted(dst: torch.Tensor, src: torch.Tensor, frame_dims: int, fold: int, reverse: bool) -> None:
    """Write the temporal shift of ``src`` into ``dst`` (same shape ``(B, *F, ..., C)``): channels
    ``[0, fold)`` from the next frame, ``[fold, 2*fold)`` from the previous one (the other way
    round if ``reverse``: the adjoint, used for the gradient), the rest unchanged."""
    ahead, behind = slice(0, fold), slice(fold, 2 * fold)
    _move_frames(dst[..., ahead], src[..., ahead], frame_dims, -1 if reverse else 1)
    _move_frames(dst[..., behind], src[..., behind], frame_dims, 1 if reverse else -1)
    dst[..., 2 * fold :] = src[..., 2 * fold :]


class _ShiftedCopy(torch.autograd.Function):
    """Temporal shift of ``(B, *F, ..., C)`` (any strides) into a new contiguous tensor: one
    copy forward, one copy backward (the adjoint shift, written in the input's memory layout)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, frame_dims: int, fold: int) -> torch.Tensor:
        ctx.frame_dims, ctx.fold = frame_dims, fold
        # the gradient goes back in x's memory layout (a dense one like it if x is not dense),
        # so the attention output x is a view of gets its gradient without another copy
        ctx.layout = (x.shape, torch.empty_like(x, device="meta").stride())
        out = x.new_empty(x.shape)
        _copy_shifted(out, x, frame_dims, fold, reverse=False)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        grad_x = grad.new_empty_strided(*ctx.layout)
        _copy_shifted(grad_x, grad, ctx.frame_dims, ctx.fold, reverse=True)
        return grad_x, None, None


def shift_frames(x: torch.Tensor, fold: int) -> torch.Tensor:
    """Temporal shift on ``(B, T, ..., C)``: channels ``[0, fold)`` of frame t take frame t+1's
    values, ``[fold, 2*fold)`` take frame t-1's, the rest stay; zeros at the clip's ends.
    Returns a new contiguous tensor.

    A single-frame clip (T=1) is an image with no neighbours and is returned unchanged
    (ours), so a T=1 video model computes exactly its image backbone."""
    if x.shape[1] == 1:
        return x
    return _ShiftedCopy.apply(x, 1, fold)


def periodic_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """Periodic Shift on ``(B*T, heads, N, d)``: the shift of :func:`shift_frames` applied inside
    every head (``fold = d // fold_div``), so shifted channels recur every ``d`` channels."""
    if x.dim() != 4:
        raise ShapeError(f"periodic_shift expects (B*T, heads, N, d), got shape {tuple(x.shape)}")
    fold = shift_fold(x.shape[-1], fold_div)
    _, clips = split_clips(x, num_frames)
    return shift_frames(clips, fold).flatten(0, 1)


def plain_shift(x: torch.Tensor, num_frames: int, fold_div: int = 4) -> torch.Tensor:
    """TSM-style shift on ``(B*T, ..., C)`` (channels last, e.g. ``(B*T, N, C)``): the first
    ``2 * (C // fold_div)`` channels of the whole channel axis move by one frame."""
    if x.dim() < 2:
        raise ShapeError(f"plain_shift expects (B*T, ..., C), got shape {tuple(x.shape)}")
    fold = shift_fold(x.shape[-1], fold_div)
    _, clips = split_clips(x, num_frames)
    return shift_frames(clips, fold).flatten(0, 1)
