"""laps.ops against obviously-correct references: masked joint attention and looped shifts."""

import math

import pytest
import torch

from laps import ops
from laps.errors import ConfigError, ShapeError


def masked_joint_attention(q, k, v, num_frames, groups):
    """Reference: attention over all T*N tokens of a clip with a block mask of the groups."""
    frames, heads, tokens, dim = q.shape
    batch = frames // num_frames

    def joint(x):
        return x.reshape(batch, num_frames, heads, tokens, -1).permute(0, 2, 1, 3, 4).reshape(batch, heads, num_frames * tokens, -1)

    group_of = torch.empty(num_frames, dtype=torch.long)
    for index, group in enumerate(groups):
        group_of[list(group)] = index
    token_group = group_of.repeat_interleave(tokens)
    allowed = token_group[:, None] == token_group[None, :]
    scores = joint(q) @ joint(k).transpose(-1, -2) / math.sqrt(dim)
    attn = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    out = attn @ joint(v)
    return out.reshape(batch, heads, num_frames, tokens, -1).permute(0, 2, 1, 3, 4).reshape(frames, heads, tokens, -1)


def looped_shift(x, num_frames, fold):
    """Reference shift on (B*T, ..., C): explicit loop over frames; T=1 stays unchanged."""
    if num_frames == 1:
        return x.clone()
    clips = x.reshape(-1, num_frames, *x.shape[1:])
    out = clips.clone()
    for t in range(num_frames):
        out[:, t, ..., :fold] = clips[:, t + 1, ..., :fold] if t + 1 < num_frames else 0
        out[:, t, ..., fold : 2 * fold] = clips[:, t - 1, ..., fold : 2 * fold] if t > 0 else 0
    return out.reshape(x.shape)


@pytest.mark.parametrize(
    "num_frames, level, expected",
    [
        (8, 1, ((0, 4), (1, 5), (2, 6), (3, 7))),
        (8, 2, ((0, 2), (1, 3), (4, 6), (5, 7))),
        (8, 3, ((0, 1), (2, 3), (4, 5), (6, 7))),
        (16, 2, ((0, 4), (1, 5), (2, 6), (3, 7), (8, 12), (9, 13), (10, 14), (11, 15))),
        (1, 1, ((0,),)),
        (2, 5, ((0, 1),)),
        (5, 1, ((0, 2), (1, 3), (4,))),
        (6, 2, ((0, 1), (2, 3), (4, 5))),
        (7, 1, ((0, 3), (1, 4), (2, 5), (6,))),
        (10, 2, ((0, 2), (1, 3), (4, 6), (5, 7), (8, 9))),
        (12, 1, ((0, 6), (1, 7), (2, 8), (3, 9), (4, 10), (5, 11))),
    ],
)
def test_leap_groups_match_spec(num_frames, level, expected):
    assert ops.leap_groups(num_frames, level) == expected


@pytest.mark.parametrize("num_frames", range(1, 18))
@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_leap_groups_partition_frames(num_frames, level):
    groups = ops.leap_groups(num_frames, level)
    assert sorted(t for g in groups for t in g) == list(range(num_frames))
    assert all(1 <= len(g) <= 2 for g in groups)
    assert sum(len(g) == 1 for g in groups) <= 1


def _qkv(frames, heads=2, tokens=5, dim=8, dtype=torch.float64, requires_grad=False):
    return [torch.randn(frames, heads, tokens, dim, dtype=dtype, requires_grad=requires_grad) for _ in range(3)]


@pytest.mark.parametrize("num_frames", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16])
@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_leap_attention_equals_masked_joint_attention(num_frames, level):
    q, k, v = _qkv(2 * num_frames)
    expected = masked_joint_attention(q, k, v, num_frames, ops.leap_groups(num_frames, level))
    torch.testing.assert_close(ops.leap_attention(q, k, v, num_frames, level), expected)


@pytest.mark.parametrize(
    "num_frames, groups",
    [
        (4, ((0,), (1,), (2,), (3,))),  # per-frame
        (4, ((0, 1, 2, 3),)),  # joint
        (6, ((0, 3), (1, 4), (2, 5))),  # strided pairs
        (5, ((0, 4), (1, 2, 3))),  # irregular, mixed sizes
        (6, ((5,), (0, 2, 4), (1, 3))),  # unsorted, three sizes
    ],
)
def test_frame_group_attention_equals_masked_joint_attention(num_frames, groups):
    q, k, v = _qkv(3 * num_frames)
    expected = masked_joint_attention(q, k, v, num_frames, groups)
    torch.testing.assert_close(ops.frame_group_attention(q, k, v, num_frames, groups), expected)


def test_frame_group_attention_accepts_non_contiguous_inputs():
    qkv = torch.randn(8, 5, 3, 2, 4, dtype=torch.float64).permute(2, 0, 3, 1, 4)  # as timm makes them
    q, k, v = qkv.unbind(0)
    groups = ops.leap_groups(4, 1)
    torch.testing.assert_close(ops.frame_group_attention(q, k, v, 4, groups), masked_joint_attention(q, k, v, 4, groups))


@pytest.mark.parametrize("num_frames, level", [(8, 1), (5, 1), (7, 2)])
def test_leap_attention_gradients_match_reference(num_frames, level):
    q, k, v = _qkv(num_frames, requires_grad=True)
    groups = ops.leap_groups(num_frames, level)
    weight = torch.randn(num_frames, 2, 5, 8, dtype=torch.float64)
    (ops.leap_attention(q, k, v, num_frames, level) * weight).sum().backward()
    fast = [x.grad.clone() for x in (q, k, v)]
    for x in (q, k, v):
        x.grad = None
    (masked_joint_attention(q, k, v, num_frames, groups) * weight).sum().backward()
    for got, want in zip(fast, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("num_frames, level", [(8, 2), (5, 1)])
def test_leap_attention_bf16_close_to_fp32(num_frames, level):
    q, k, v = _qkv(2 * num_frames, dtype=torch.float32)
    want = ops.leap_attention(q, k, v, num_frames, level)
    got = ops.leap_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), num_frames, level)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=3e-2, rtol=3e-2)


@pytest.mark.parametrize("num_frames", [1, 2, 3, 8])
@pytest.mark.parametrize("fold_div", [2, 4, 8])
def test_periodic_shift_equals_looped_reference(num_frames, fold_div):
    x = torch.randn(2 * num_frames, 3, 4, 8)
    torch.testing.assert_close(ops.periodic_shift(x, num_frames, fold_div), looped_shift(x, num_frames, 8 // fold_div))


def test_periodic_shift_is_per_head_and_plain_shift_is_global():
    num_frames, heads, dim = 4, 3, 8
    x = torch.randn(num_frames, heads, 2, dim)
    periodic = ops.periodic_shift(x, num_frames, 4)
    moved = (periodic != x).any(dim=(0, 2))  # (heads, d): which channels changed
    assert moved[:, :4].all() and not moved[:, 4:].any()  # first 2*fold channels of EVERY head

    tokens = x.transpose(1, 2).reshape(num_frames, 2, heads * dim)  # (B*T, N, C)
    plain = ops.plain_shift(tokens, num_frames, 4)
    changed = (plain != tokens).any(dim=(0, 1))
    assert changed[:12].all() and not changed[12:].any()  # first 2*(24//4) channels overall
    torch.testing.assert_close(plain, looped_shift(tokens, num_frames, 6))


def test_shift_never_mixes_clips():
    num_frames = 3
    x = torch.zeros(2 * num_frames, 1, 1, 8)
    x[:num_frames] = 1.0  # clip 0 all ones, clip 1 zeros
    out = ops.periodic_shift(x, num_frames, 4)
    assert out[num_frames:].abs().sum() == 0


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: ops.leap_groups(8, 0), ConfigError),
        (lambda: ops.leap_groups(0, 1), ConfigError),
        (lambda: ops.leap_attention(*_qkv(6), num_frames=4, level=1), ShapeError),
        (lambda: ops.leap_attention(torch.randn(4, 5, 8), torch.randn(4, 5, 8), torch.randn(4, 5, 8), 4, 1), ShapeError),
        (lambda: ops.frame_group_attention(*_qkv(4), num_frames=4, groups=((0, 1), (1, 2, 3))), ConfigError),
        (lambda: ops.periodic_shift(torch.randn(4, 2, 3, 8), 4, fold_div=16), ConfigError),
        (lambda: ops.periodic_shift(torch.randn(4, 2, 3, 8), 4, fold_div=1), ConfigError),
        (lambda: ops.periodic_shift(torch.randn(6, 2, 3, 8), 4), ShapeError),
    ],
)
def test_bad_input_raises_precise_errors(call, error):
    with pytest.raises(error) as info:
        call()
    assert "\n" not in str(info.value)


def test_ops_under_torch_compile_match_eager():
    q, k, v = _qkv(10, dtype=torch.float32)

    def layer(q, k, v):
        return ops.periodic_shift(ops.leap_attention(q, k, v, 5, 1), 5, 4)

    compiled = torch.compile(layer, backend="eager", fullgraph=False)
    torch.testing.assert_close(compiled(q, k, v), layer(q, k, v))


# --- temporal_mix: the fast path of a temporal attention block (attention, heads merged, shift) ---


def reference_mix(q, k, v, num_frames, groups, shift, fold_div):
    """Reference of ops.temporal_mix: masked joint attention, heads merged, looped shift."""
    out = masked_joint_attention(q, k, v, num_frames, groups).transpose(1, 2)  # (B*T, N, h, d)
    if shift == "periodic":
        out = looped_shift(out, num_frames, out.shape[-1] // fold_div)
    out = out.flatten(2)
    if shift == "plain":
        out = looped_shift(out, num_frames, out.shape[-1] // fold_div)
    return out


def _timm_qkv(frames, dtype, heads=2, tokens=3, dim=8):
    """q, k, v as timm makes them: strided views of one (B*T, N, 3, h, d) leaf tensor."""
    base = torch.randn(frames, tokens, 3, heads, dim, dtype=dtype, requires_grad=True)
    return base, base.permute(2, 0, 3, 1, 4).unbind(0)


def _mix_and_grad(mix, num_frames, groups, shift, fold_div, base, qkv, weight):
    out = mix(*qkv, num_frames, groups, shift, fold_div)
    (out * weight).sum().backward()
    grad, base.grad = base.grad, None
    return out, grad


SHIFTS = [("none", 4), ("periodic", 2), ("periodic", 4), ("periodic", 8), ("plain", 4)]


@pytest.mark.parametrize("num_frames", [1, 2, 3, 5, 6, 7, 8, 12, 16])
@pytest.mark.parametrize("level", [None, 1, 2, 3, -1])
@pytest.mark.parametrize("shift, fold_div", SHIFTS)
def test_temporal_mix_equals_reference_forward_and_backward(num_frames, level, shift, fold_div):
    groups = ops.frame_groups(num_frames, level)
    base, qkv = _timm_qkv(2 * num_frames, torch.float64)
    weight = torch.randn(2 * num_frames, 3, 16, dtype=torch.float64)
    got = _mix_and_grad(ops.temporal_mix, num_frames, groups, shift, fold_div, base, qkv, weight)
    want = _mix_and_grad(reference_mix, num_frames, groups, shift, fold_div, base, qkv, weight)
    assert got[0].is_contiguous() and got[0].shape == (2 * num_frames, 3, 16)
    for fast, ref in zip(got, want):
        torch.testing.assert_close(fast, ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("num_frames, level", [(8, 1), (8, 3), (5, 1), (12, 2), (16, 2), (7, -1), (6, None)])
@pytest.mark.parametrize("shift, fold_div", SHIFTS)
def test_temporal_mix_low_precision_forward_and_backward(dtype, num_frames, level, shift, fold_div):
    """Same attention as frame_group_attention to the bit, the shift exact; close to fp64."""
    groups = ops.frame_groups(num_frames, level)
    base, qkv = _timm_qkv(num_frames, dtype)
    weight = torch.randn(num_frames, 3, 16, dtype=dtype)
    got, grad = _mix_and_grad(ops.temporal_mix, num_frames, groups, shift, fold_div, base, qkv, weight)
    assert got.dtype == dtype and grad.dtype == dtype
    attention = ops.frame_group_attention(*qkv, num_frames, groups).detach()
    unshifted = ops.temporal_mix(*qkv, num_frames, groups, "none").detach()
    torch.testing.assert_close(unshifted, attention.transpose(1, 2).flatten(2), rtol=0, atol=0)
    if shift == "periodic":
        shifted = looped_shift(attention.transpose(1, 2), num_frames, 8 // fold_div).flatten(2)
        torch.testing.assert_close(got.detach(), shifted, rtol=0, atol=0)
    wide = base.detach().double().requires_grad_()
    want, want_grad = _mix_and_grad(
        reference_mix, num_frames, groups, shift, fold_div, wide,
        wide.permute(2, 0, 3, 1, 4).unbind(0), weight.double(),
    )
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)
    torch.testing.assert_close(grad.double(), want_grad, atol=5 * tol, rtol=5 * tol)


def test_temporal_mix_under_torch_compile_matches_eager():
    groups = ops.frame_groups(8, 2)
    base, qkv = _timm_qkv(8, torch.float32)
    weight = torch.randn(8, 3, 16)
    compiled = torch.compile(ops.temporal_mix, backend="eager", fullgraph=True)
    got = _mix_and_grad(compiled, 8, groups, "periodic", 4, base, qkv, weight)
    want = _mix_and_grad(ops.temporal_mix, 8, groups, "periodic", 4, base, qkv, weight)
    for fast, ref in zip(got, want):
        torch.testing.assert_close(fast, ref)
