"""Moving the frames of ``(B*T, ...)`` clips between clip order and a group order, shifting channels
between neighbouring frames on the way: the one copy each temporal block makes on each side of its
attention. :mod:`laps.ops` re-exports :class:`GroupLayout`, :data:`CLIP_ORDER`, :class:`Reorder`
and :func:`reorder` as part of its fast path, and explains group orders.

Worked example, ``T = 8`` at leap level 2 (leap 2, ``GroupLayout(group_size=2, leap=2)``), groups
``(0,2) (1,3) (4,6) (5,7)``: group order holds frames ``0 2 1 3 4 6 5 7``. With the periodic shift, output
frame ``t`` takes channels ``[0, fold)`` from frame ``t+1`` and ``[fold, 2*fold)`` from frame
``t-1`` (zeros past the clip's ends), so the write-back of the example reads, per output frame::

    out frame t      0  1  2  3  4  5  6  7
    [0, fold)        1  2  3  4  5  6  7  z
    [fold, 2*fold)   z  0  1  2  3  4  5  6
    the rest         0  1  2  3  4  5  6  7      (z: zeros)

:func:`reorder_reference` states this out of place (an index permutation, then concatenations):
it is the specification, and graph exporters use it. The fast path (:func:`reorder`) writes the
same values into one preallocated tensor. Its key idea: the input and the output are both viewed
by the digits ``(run, member, j)`` of the clip frame each row holds (:func:`_frame_digits`; the
tensor in group order through a permuted view), so one ``copy_`` from one view into the other is
the reordering, and the shift is a few slice copies along those digits (:func:`_shift_frames`
finds ``t + 1`` without a gather). Tests check the two are equal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

__all__ = ["GroupLayout", "CLIP_ORDER", "Reorder", "reorder", "reorder_reference"]


@dataclass(frozen=True)
class GroupLayout:
    """A regular schedule: runs of ``group_size * leap`` consecutive frames, each run split into
    ``leap`` groups ``(j, j + leap, ..., j + (group_size - 1) * leap)``.

    Frame ``t`` of a clip has the digits ``t = (run * group_size + member) * leap + j``. Clip order
    walks the digits as ``(run, member, j)``; group order as ``(run, j, member)``."""

    group_size: int
    leap: int

    @property
    def is_clip_order(self) -> bool:
        """True when group order and clip order coincide (one frame a group, or adjacent frames)."""
        return self.group_size == 1 or self.leap == 1

    def frames_in_group_order(self, num_frames: int) -> list[int]:
        """The clip's frame at each row of group order: ``[0, 2, 1, 3, 4, 6, 5, 7]`` for the example."""
        per_run = self.group_size * self.leap
        return [run * per_run + member * self.leap + j for run in range(num_frames // per_run)
                for j in range(self.leap) for member in range(self.group_size)]


#: the layout whose group order is clip order: per-frame attention, and irregular schedules
CLIP_ORDER = GroupLayout(1, 1)


@dataclass(frozen=True)
class Reorder:
    """One move of the frames of ``(B*T, ..., C)`` clips, as one value.

    Attributes:
        num_frames: ``T``.
        layout: the group order moved into or out of.
        to_groups: True: clip order -> group order; False: group order -> clip order.
        fold: channels shifted each way on the way (0: no shift).
        direction: +1: channels ``[0, fold)`` of frame t come from frame ``t+1`` and
            ``[fold, 2*fold)`` from ``t-1``; -1: the other way round (the gradient's move).
        dtype: the result's dtype (None: the input's).
        memory_order: the result's dims from the slowest- to the fastest-varying in memory
            (None: contiguous).
    """

    num_frames: int
    layout: GroupLayout
    to_groups: bool
    fold: int = 0
    direction: int = 1
    dtype: torch.dtype | None = None
    memory_order: tuple[int, ...] | None = None

    def adjoint(self, x: torch.Tensor) -> "Reorder":
        """The move that carries a gradient of this move's output back to ``x``'s order, dtype and
        memory layout."""
        return replace(self, to_groups=not self.to_groups, direction=-self.direction, dtype=x.dtype,
                       memory_order=_memory_order(x))


def _memory_order(x: torch.Tensor) -> tuple[int, ...]:
    """The dims of ``x`` from the slowest- to the fastest-varying in memory."""
    return tuple(sorted(range(x.dim()), key=lambda dim: -x.stride(dim)))


def _shift_along_frames(clips: torch.Tensor, fold: int, direction: int) -> torch.Tensor:
    """``(B, T, ..., C)``: channels ``[0, fold)`` of frame t from frame ``t + direction``,
    ``[fold, 2*fold)`` from ``t - direction``, zeros past the clip's ends; out of place."""
    def moved(part: torch.Tensor, by: int) -> torch.Tensor:
        zeros = torch.zeros_like(part[:, :1])
        return torch.cat([part[:, 1:], zeros], 1) if by > 0 else torch.cat([zeros, part[:, :-1]], 1)

    return torch.cat([moved(clips[..., :fold], direction), moved(clips[..., fold:2 * fold], -direction),
                      clips[..., 2 * fold:]], dim=-1)


def reorder_reference(x: torch.Tensor, move: Reorder) -> torch.Tensor:
    """The specification of a move, out of place: ``(B*T, ...)`` -> ``(B*T, ...)``.

    Frames are permuted by :meth:`GroupLayout.frames_in_group_order` (or its inverse), the shift is
    done on clip order by concatenation. Used by graph exporters (ONNX turns slice writes into slow
    scatters); the result is contiguous."""
    clips = x.unflatten(0, (-1, move.num_frames))  # (B, T, ...)
    rows = move.layout.frames_in_group_order(move.num_frames)
    if not move.to_groups:  # group order -> clip order: row p of group order holds frame rows[p]
        clips = clips[:, [rows.index(t) for t in range(move.num_frames)]]
    if move.fold and move.num_frames > 1:
        clips = _shift_along_frames(clips, move.fold, move.direction)
    if move.to_groups:
        clips = clips[:, rows]
    return clips.reshape(x.shape).to(move.dtype or x.dtype)


def _frame_digits(x: torch.Tensor, num_frames: int, layout: GroupLayout, group_order: bool) -> torch.Tensor:
    """View ``(B*T, ...)`` as ``(B, runs, group_size, leap, ...)``, frame ``t`` of a clip at its digits
    ``(run, member, j)``; for a tensor in group order, a permuted view. When group order is clip
    order, the frame is one digit: ``(B, T, 1, 1, ...)``."""
    group_size, leap = (1, 1) if layout.is_clip_order else (layout.group_size, layout.leap)
    runs = num_frames // (group_size * leap)
    if group_order:
        return x.unflatten(0, (-1, runs, leap, group_size)).transpose(2, 3)
    return x.unflatten(0, (-1, runs, group_size, leap))


def _shift_frames(dst: torch.Tensor, src: torch.Tensor, direction: int) -> None:
    """``dst[frame t] = src[frame t + direction]`` (``direction`` +1 or -1) on digit views
    ``(B, runs, group_size, leap, ...)``; zeros where ``t + direction`` leaves the clip.

    ``t + 1`` is ``t`` with a carry, as in counting: for ``T = 8``, digits ``(run, member, j)`` of
    sizes ``(2, 2, 2)``:

    * frames whose ``j`` is not last take ``j + 1``: frames 0, 2, 4, 6 <- 1, 3, 5, 7;
    * frames whose ``j`` is last and ``member`` is not take ``member + 1`` with ``j = 0``: 1, 5 <- 2, 6;
    * frames whose ``j`` and ``member`` are last and ``run`` is not: 3 <- 4;
    * the frame with every digit last (7) gets zeros.

    One slice copy a digit (``outer + (keep,) + (last,) * later`` picks the frames of one line); for
    ``direction = -1`` the same with first and last swapped. Frames of different clips never mix:
    the batch dim is never carried into."""
    last, first = (slice(-1, None), slice(0, 1)) if direction > 0 else (slice(0, 1), slice(-1, None))
    keep, take = (slice(None, -1), slice(1, None)) if direction > 0 else (slice(1, None), slice(None, -1))
    for digit in (3, 2, 1):  # j, member, run
        if dst.shape[digit] > 1:
            outer, later = (slice(None),) * digit, 3 - digit
            dst[outer + (keep,) + (last,) * later] = src[outer + (take,) + (first,) * later]
    dst[(slice(None), last, last, last)] = 0


def _write_frames(dst: torch.Tensor, src: torch.Tensor, fold: int, direction: int) -> None:
    """``dst = src`` on digit views, channels ``[0, fold)`` taken from frame ``t + direction`` and
    ``[fold, 2*fold)`` from ``t - direction``."""
    if not fold:
        dst.copy_(src)
        return
    _shift_frames(dst[..., :fold], src[..., :fold], direction)
    _shift_frames(dst[..., fold : 2 * fold], src[..., fold : 2 * fold], -direction)
    dst[..., 2 * fold :] = src[..., 2 * fold :]


def _reorder_in_place(x: torch.Tensor, move: Reorder) -> torch.Tensor:
    """:func:`reorder_reference`'s values written into one new tensor by slice copies."""
    if torch.compiler.is_exporting():
        return reorder_reference(x, move)
    memory_order = move.memory_order or tuple(range(x.dim()))
    out = torch.empty_permuted(x.shape, memory_order, dtype=move.dtype or x.dtype, device=x.device)
    fold = move.fold if move.num_frames > 1 else 0
    _write_frames(_frame_digits(out, move.num_frames, move.layout, group_order=move.to_groups),
                  _frame_digits(x, move.num_frames, move.layout, group_order=not move.to_groups),
                  fold, move.direction)
    return out


class _ReorderFunction(torch.autograd.Function):
    """A :class:`Reorder`: one copy forward, the adjoint copy backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, move: Reorder) -> torch.Tensor:
        ctx.adjoint = move.adjoint(x)
        return _reorder_in_place(x, move)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        return _reorder_in_place(grad, ctx.adjoint), None


def reorder(x: torch.Tensor, move: Reorder) -> torch.Tensor:
    """Apply ``move`` to ``(B*T, ...)`` (no shape checks: the caller checked its input once); one
    copy, or ``x`` itself when the move changes nothing."""
    identity = (move.layout.is_clip_order and not (move.fold and move.num_frames > 1)
                and move.dtype in (None, x.dtype) and move.memory_order is None)
    return x if identity else _ReorderFunction.apply(x, move)
