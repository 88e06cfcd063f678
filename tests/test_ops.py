"""laps.ops against obviously-correct references: masked joint attention and looped shifts."""

import pytest
import torch

from laps import frame_order, ops
from laps.analysis.dispatch import OpCounter
from laps.errors import ConfigError, ShapeError
from tests.helpers import looped_shift, masked_joint_attention


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


@pytest.mark.parametrize("num_frames, level, expected", [(8, 1, 4), (8, 2, 2), (8, 3, 1), (8, 4, 1), (16, 2, 4),
                                                         (5, 1, 2), (7, 2, 1), (1, 1, 1)])
def test_leap_is_the_distance_within_a_pair(num_frames, level, expected):
    assert ops.leap(num_frames, level) == expected
    pairs = [g for g in ops.leap_groups(num_frames, level) if len(g) == 2]
    assert not pairs or pairs[0][1] - pairs[0][0] == expected


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
        (6, ((0, 3), (1, 4), (2, 5))),  # pairs at leap 3
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
        (lambda: ops.leap(8, 0), ConfigError),
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


@pytest.mark.slow  # torch.compile
def test_ops_under_torch_compile_match_eager():
    q, k, v = _qkv(10, dtype=torch.float32)

    def layer(q, k, v):
        return ops.periodic_shift(ops.leap_attention(q, k, v, 5, 1), 5, 4)

    compiled = torch.compile(layer, backend="eager", fullgraph=False)
    torch.testing.assert_close(compiled(q, k, v), layer(q, k, v))


# --- the fast path: group order, attention on views, one copy back with the shift -------------


def _timm_qkv(frames, dtype, heads=2, tokens=3, dim=8):
    """q, k, v as timm makes them: strided views of one (B*T, N, 3, h, d) leaf tensor."""
    base = torch.randn(frames, tokens, 3, heads, dim, dtype=dtype, requires_grad=True)
    return base, base.permute(2, 0, 3, 1, 4).unbind(0)


def group_order_frames(layout, num_frames):
    """Reference: the frame at each row of a clip in group order, by the definition's loops."""
    g, s = layout.group_size, layout.leap
    return [run * g * s + m * s + j for run in range(num_frames // (g * s)) for j in range(s) for m in range(g)]


def reorder_rows(x, num_frames, rows):
    """Reference: (B*T, ...) with row p of every clip taken from row rows[p]."""
    clips = x.reshape(-1, num_frames, *x.shape[1:])
    return torch.stack([clips[:, r] for r in rows], 1).reshape(x.shape)


def _inverse(rows):
    return [rows.index(p) for p in range(len(rows))]


@pytest.mark.parametrize(
    "num_frames, groups, expected",
    [
        (8, ops.leap_groups(8, 1), ops.GroupLayout(2, 4)),
        (8, ops.leap_groups(8, 2), ops.GroupLayout(2, 2)),
        (8, ops.leap_groups(8, 3), ops.GroupLayout(2, 1)),
        (12, ops.leap_groups(12, 2), ops.GroupLayout(2, 3)),
        (4, ops.frame_groups(4, None), ops.GroupLayout(1, 1)),
        (4, ops.frame_groups(4, -1), ops.GroupLayout(4, 1)),
        (5, ops.leap_groups(5, 1), None),
        (6, ((0, 3), (1, 4), (2, 5)), ops.GroupLayout(2, 3)),
        (6, ((5,), (0, 2, 4), (1, 3)), None),
    ],
)
def test_group_layout(num_frames, groups, expected):
    assert ops.group_layout(groups, num_frames) == expected
    if expected is not None:  # group order really puts every group's frames side by side
        rows = group_order_frames(expected, num_frames)
        chunks = {tuple(rows[i : i + expected.group_size]) for i in range(0, num_frames, expected.group_size)}
        assert chunks == set(groups)


@pytest.mark.parametrize("num_frames, level", [(8, 1), (8, 2), (16, 2), (4, None), (4, -1)])
def test_attend_groups_on_timm_qkv_is_a_view_of_the_frames(num_frames, level):
    """In group order, timm's q, k, v go to the attention kernel as views: nothing is copied."""
    groups = ops.frame_groups(num_frames, level)
    layout = ops.group_layout(groups, num_frames)
    _, (q, k, v) = _timm_qkv(2 * num_frames, torch.float64)  # rows taken as group order
    with OpCounter() as counter:
        out = ops.attend_groups(q, k, v, num_frames, groups, layout)
    assert counter.copies == 0, counter.ops
    to_clip_order = _inverse(group_order_frames(layout, num_frames))
    natural = [reorder_rows(x, num_frames, to_clip_order) for x in (q, k, v)]
    expected = masked_joint_attention(*natural, num_frames, groups)
    torch.testing.assert_close(reorder_rows(out, num_frames, to_clip_order), expected)


@pytest.mark.parametrize("num_frames, level", [(8, 1), (8, 2), (12, 2), (16, 3), (5, 1), (7, -1), (6, None)])
def test_the_fast_path_equals_the_reference_functions(num_frames, level):
    """reorder into group order, attend_groups, reorder back with the shift == frame_group_attention,
    then periodic_shift (regular and irregular schedules)."""
    groups = ops.frame_groups(num_frames, level)
    layout = ops.group_layout(groups, num_frames)
    order = layout or ops.CLIP_ORDER
    q, k, v = _qkv(2 * num_frames)
    grouped = [ops.reorder(x, ops.Reorder(num_frames, order, to_groups=True)) for x in (q, k, v)]
    out = ops.attend_groups(*grouped, num_frames, groups, layout)
    got = ops.reorder(out, ops.Reorder(num_frames, order, to_groups=False, fold=2))
    want = ops.periodic_shift(ops.frame_group_attention(q, k, v, num_frames, groups), num_frames, 4)
    torch.testing.assert_close(got, want)


REORDERS = [(8, 1), (8, 2), (8, 3), (12, 2), (16, 3), (6, None), (1, None)]


@pytest.mark.parametrize("num_frames, level", REORDERS)
@pytest.mark.parametrize("fold", [0, 1, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_reorder_back_equals_reorder_then_looped_shift(num_frames, level, fold, dtype):
    layout = ops.group_layout(ops.frame_groups(num_frames, level), num_frames)
    to_clip_order = _inverse(group_order_frames(layout, num_frames))
    y = torch.randn(2 * num_frames, 3, 2, 8, dtype=dtype, requires_grad=True)
    weight = torch.randn(2 * num_frames, 3, 2, 8, dtype=dtype)
    got = ops.reorder(y, ops.Reorder(num_frames, layout, to_groups=False, fold=fold))
    (got * weight).sum().backward()

    def reference(x):
        return looped_shift(reorder_rows(x, num_frames, to_clip_order), num_frames, fold)

    torch.testing.assert_close(got, reference(y.detach()), rtol=0, atol=0)  # only copies: exact in any dtype
    wide = y.detach().clone().requires_grad_()
    (reference(wide) * weight).sum().backward()
    torch.testing.assert_close(y.grad, wide.grad, rtol=0, atol=0)


@pytest.mark.parametrize("num_frames, level", REORDERS)
def test_reorder_into_groups_casts_in_the_same_copy(num_frames, level):
    layout = ops.group_layout(ops.frame_groups(num_frames, level), num_frames)
    x = torch.randn(2 * num_frames, 3, 8, requires_grad=True)
    with OpCounter() as counter:
        got = ops.reorder(x, ops.Reorder(num_frames, layout, to_groups=True, dtype=torch.bfloat16))
    assert counter.copies == 1 and got.dtype == torch.bfloat16
    expected = reorder_rows(x.detach(), num_frames, group_order_frames(layout, num_frames)).bfloat16()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    weight = torch.randn(2 * num_frames, 3, 8, dtype=torch.bfloat16)
    (got * weight).float().sum().backward()
    back = reorder_rows(weight.float(), num_frames, _inverse(group_order_frames(layout, num_frames)))
    assert x.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, back, rtol=0, atol=0)


def test_reorder_writes_the_asked_memory_order_and_the_gradient_in_the_input_layout():
    layout = ops.group_layout(ops.leap_groups(4, 1), 4)
    y = torch.randn(8, 4, 2, 8).transpose(1, 2).requires_grad_()  # (B*T, 2, 4, 8), not contiguous
    back = ops.Reorder(4, layout, to_groups=False, fold=2, memory_order=(0, 2, 3, 1))  # channels first, as Visformer's
    out = ops.reorder(y, back)
    assert out.permute(0, 2, 3, 1).is_contiguous()
    to_clip_order = _inverse(group_order_frames(layout, 4))
    torch.testing.assert_close(out, looped_shift(reorder_rows(y.detach(), 4, to_clip_order), 4, 2))
    out.backward(torch.ones_like(out))
    assert y.grad.stride() == y.stride()


def test_moves_that_change_nothing_return_their_input():
    x = torch.randn(8, 3, 4)
    assert ops.reorder(x, ops.Reorder(4, ops.CLIP_ORDER, to_groups=True)) is x
    assert ops.reorder(x, ops.Reorder(4, ops.GroupLayout(2, 1), to_groups=True)) is x  # adjacent pairs: clip order
    assert ops.reorder(x, ops.Reorder(4, ops.GroupLayout(4, 1), to_groups=False)) is x
    assert ops.reorder(x, ops.Reorder(1, ops.CLIP_ORDER, to_groups=False, fold=1)) is x  # one frame: no shift


def test_split_clips_views_whole_clips_and_rejects_partial_ones():
    x = torch.randn(8, 2)
    batch, clips = ops.split_clips(x, 4)
    assert batch == 2 and clips.shape == (2, 4, 2) and clips.data_ptr() == x.data_ptr()
    assert torch.equal(clips[1, 3], x[7])
    with pytest.raises(ShapeError, match="multiple of num_frames"):
        ops.split_clips(torch.randn(6, 2), 4)


@pytest.mark.slow  # torch.compile
@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_temporal_block_ops_under_torch_compile(backend):
    groups = ops.leap_groups(8, 2)
    layout = ops.group_layout(groups, 8)

    def block(x, weight):
        qkv = (ops.reorder(x, ops.Reorder(8, layout, to_groups=True)) @ weight).unflatten(-1, (3, 2, 8))
        out = ops.attend_groups(*qkv.permute(2, 0, 3, 1, 4).unbind(0), 8, groups, layout).transpose(1, 2)
        return ops.reorder(out, ops.Reorder(8, layout, to_groups=False, fold=2))

    x, weight = torch.randn(16, 3, 16, requires_grad=True), torch.randn(16, 48, requires_grad=True)
    eager = block(x, weight)
    eager.square().sum().backward()
    grads = [x.grad, weight.grad]
    x.grad = weight.grad = None
    got = torch.compile(block, backend=backend, fullgraph=True)(x, weight)
    got.square().sum().backward()
    torch.testing.assert_close(got, eager)
    torch.testing.assert_close([x.grad, weight.grad], grads)


# --- the whole path of a temporal ViT block against the oracle ---------------------------------


def fast_block(x, weight, num_frames, groups, shift, fold_div, dtype=None):
    """What ViTTemporalAttention does between its input tokens and its projection."""
    layout = ops.group_layout(groups, num_frames)
    order = layout or ops.CLIP_ORDER
    qkv = ops.reorder(x, ops.Reorder(num_frames, order, to_groups=True, dtype=dtype)) @ weight.to(dtype or x.dtype)
    q, k, v = qkv.unflatten(-1, (3, 2, 8)).permute(2, 0, 3, 1, 4).unbind(0)  # timm's layout, 2 heads of 8
    out = ops.attend_groups(q, k, v, num_frames, groups, layout).transpose(1, 2)  # (B*T, N, h, d)
    if shift == "plain":
        out = out.flatten(2)
    fold = {"none": 0, "periodic": 8 // fold_div, "plain": 16 // fold_div}[shift]
    return ops.reorder(out, ops.Reorder(num_frames, order, to_groups=False, fold=fold)).flatten(2)


def reference_block(x, weight, num_frames, groups, shift, fold_div):
    """Masked joint attention over the clip, heads merged, looped shift."""
    q, k, v = (x @ weight).unflatten(-1, (3, 2, 8)).permute(2, 0, 3, 1, 4).unbind(0)
    out = masked_joint_attention(q, k, v, num_frames, groups).transpose(1, 2)
    if shift == "periodic":
        out = looped_shift(out, num_frames, 8 // fold_div)
    out = out.flatten(2)
    if shift == "plain":
        out = looped_shift(out, num_frames, 16 // fold_div)
    return out


def _run(block, x, weight, *args, **kwargs):
    x, weight = x.detach().requires_grad_(), weight.detach().requires_grad_()
    out = block(x, weight, *args, **kwargs)
    (out.float() * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return out, x.grad, weight.grad


SHIFTS = [("none", 4), ("periodic", 2), ("periodic", 4), ("periodic", 8), ("plain", 4)]


@pytest.mark.parametrize("num_frames", [1, 2, 3, 5, 6, 7, 8, 12, 16])
@pytest.mark.parametrize("level", [None, 1, 2, 3, -1])
@pytest.mark.parametrize("shift, fold_div", SHIFTS)
def test_block_path_equals_masked_attention_and_looped_shift(num_frames, level, shift, fold_div):
    groups = ops.frame_groups(num_frames, level)
    x, weight = torch.randn(2 * num_frames, 3, 16, dtype=torch.float64), torch.randn(16, 48, dtype=torch.float64)
    got = _run(fast_block, x, weight, num_frames, groups, shift, fold_div)
    want = _run(reference_block, x, weight, num_frames, groups, shift, fold_div)
    assert got[0].is_contiguous() and got[0].shape == (2 * num_frames, 3, 16)
    for fast, ref in zip(got, want):
        torch.testing.assert_close(fast, ref)


@pytest.mark.parametrize("num_frames, level", [(8, 1), (8, 3), (5, 1), (12, 2), (16, 2), (7, -1), (6, None)])
@pytest.mark.parametrize("shift, fold_div", [("none", 4), ("periodic", 4), ("plain", 4)])
def test_block_path_in_bf16_autocast_style_is_close_to_fp64(num_frames, level, shift, fold_div):
    """fp32 tokens cast to bf16 in the reordering copy, as under autocast."""
    groups = ops.frame_groups(num_frames, level)
    x, weight = torch.randn(num_frames, 3, 16), torch.randn(16, 48) / 4
    out, x_grad, w_grad = _run(fast_block, x, weight, num_frames, groups, shift, fold_div, dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16 and x_grad.dtype == torch.float32
    want = _run(reference_block, x.double(), weight.double(), num_frames, groups, shift, fold_div)
    torch.testing.assert_close(out.double(), want[0], atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(x_grad.double(), want[1], atol=2e-1, rtol=1e-1)


@pytest.mark.parametrize("to_groups", [True, False])
@pytest.mark.parametrize("fold, direction", [(0, 1), (2, 1), (3, -1)])
@pytest.mark.parametrize("num_frames, level", [(8, 1), (8, 2), (8, 3), (4, 1), (6, 1), (2, 1), (8, None), (12, 2)])
def test_the_fast_reorder_equals_the_reference(num_frames, level, fold, direction, to_groups):
    """The slice-copy path writes exactly the values of the out-of-place specification."""
    layout = ops.group_layout(ops.frame_groups(num_frames, level), num_frames)
    x = torch.randn(2 * num_frames, 3, 5, 12)
    move = ops.Reorder(num_frames, layout, to_groups, fold, direction, torch.float32)
    assert torch.equal(ops.reorder(x, move), frame_order.reorder_reference(x, move))


@pytest.mark.parametrize("num_frames, level", REORDERS)
def test_the_reference_reorder_is_the_definition(num_frames, level):
    """The specification against the definition's loops: frames permuted, then shifted frame by frame."""
    layout = ops.group_layout(ops.frame_groups(num_frames, level), num_frames)
    x = torch.randn(2 * num_frames, 3, 8)
    rows = group_order_frames(layout, num_frames)
    into = frame_order.reorder_reference(x, ops.Reorder(num_frames, layout, to_groups=True))
    torch.testing.assert_close(into, reorder_rows(x, num_frames, rows), rtol=0, atol=0)
    back = frame_order.reorder_reference(into, ops.Reorder(num_frames, layout, to_groups=False, fold=2))
    torch.testing.assert_close(back, looped_shift(x, num_frames, 2), rtol=0, atol=0)


def test_level_constants_name_the_per_frame_and_joint_schedules():
    assert ops.frame_groups(4, ops.PER_FRAME) == ops.frame_groups(4, None) == ((0,), (1,), (2,), (3,))
    assert ops.frame_groups(4, ops.JOINT) == ((0, 1, 2, 3),)
