"""What a temporal block costs in data movement, counted op by op (forward and backward, bf16
autocast as in training): its copies and the bytes they write, against the base2d block.

A ViT's q, k, v are views of one token-major tensor, so base2d's attention block copies nothing
but autocast's casts. A temporal ViT block may add exactly one pass over its ``(B*T, N, C)``
tokens each way: la puts its input into group order inside the cast autocast makes anyway and
writes the output back in one copy; ps and laps write the shift in that same copy. A Visformer
block copies q, k, v and its output even as base2d; la and the shifts fit into those copies."""

import functools

import pytest
import torch

import laps
from laps.analysis.dispatch import OpCounter
from tests.helpers import TINY_VIT, TINY_VIT_KW

FRAMES = 8
CASES = {  # backbone -> (timm kwargs, block input shape for 2 clips); only the first block is measured
    TINY_VIT: ({**TINY_VIT_KW, "depth": 1}, (2 * FRAMES, 17, 192)),
    "visformer_tiny": ({"img_size": 64, "depth": (1, 1, 1)}, (2 * FRAMES, 192, 4, 4)),
}


@functools.cache  # base2d is every test's reference: counted once
def block_traffic(backbone: str, variant: str) -> dict[str, tuple[int, int]]:
    """(copies, bytes written by copies) of the first attention block's forward and backward."""
    kwargs, shape = CASES[backbone]
    model = laps.create_model(backbone, temporal=variant, num_frames=FRAMES, num_classes=5, **kwargs).train()
    attention = model.attention_modules[0]
    block = next(m for m in model.backbone.modules() if getattr(m, "attn", None) is attention)
    x = torch.randn(*shape, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16), OpCounter() as forward:
        y = block(x)
    with OpCounter() as backward:
        y.float().sum().backward()
    assert attention.level == {"la": 1, "laps": 1, "joint": -1}.get(variant)  # a leap block: not clip order
    return {"forward": (forward.copies, forward.copy_bytes), "backward": (backward.copies, backward.copy_bytes)}


def _unit(backbone: str) -> int:
    """Bytes of one bf16 pass over the block's tokens."""
    shape = CASES[backbone][1]
    return torch.Size(shape).numel() * 2


# extra (copies, passes over the tokens) of each variant over base2d, forward then backward
VIT_EXTRA = {
    "ps": {"forward": (5, 1), "backward": (5, 1)},  # the shift: 3 channel groups + 2 zero fills
    "la": {"forward": (1, 1), "backward": (1, 1)},  # the way back to clip order (the way in is the cast)
    "laps": {"forward": (7, 1), "backward": (7, 1)},  # both in the same copy: slices per frame digit
    "plain_shift": {"forward": (5, 1), "backward": (5, 1)},  # as ps, on the merged channels
    "joint": {"forward": (0, 0), "backward": (0, 0)},  # all frames of a clip are one view
}


@pytest.mark.parametrize("variant", [v if v in ("la", "laps", "joint") else pytest.param(v, marks=pytest.mark.slow)
                                     for v in sorted(VIT_EXTRA)])  # ps, plain_shift: ablations of laps
def test_vit_block_adds_at_most_one_pass_over_its_tokens(variant):
    base, temporal, unit = block_traffic(TINY_VIT, "base2d"), block_traffic(TINY_VIT, variant), _unit(TINY_VIT)
    for direction, (copies, passes) in VIT_EXTRA[variant].items():
        base_copies, base_bytes = base[direction]
        got_copies, got_bytes = temporal[direction]
        assert got_bytes == base_bytes + passes * unit, (direction, got_bytes - base_bytes)
        assert got_copies <= base_copies + copies, (direction, got_copies - base_copies)


@pytest.mark.parametrize("variant", ["laps", *(pytest.param(v, marks=pytest.mark.slow) for v in ("ps", "la", "plain_shift", "joint"))])
def test_visformer_block_forward_moves_no_more_bytes_than_base2d(variant):
    base, temporal, unit = block_traffic("visformer_tiny", "base2d"), block_traffic("visformer_tiny", variant), _unit("visformer_tiny")
    assert temporal["forward"][1] == base["forward"][1]  # grouping and shift ride on copies base2d makes
    extra_backward = temporal["backward"][1] - base["backward"][1]
    # the gradients of q, k, v go back to clip order: three passes where the block has a leap level
    assert extra_backward == (3 * unit if variant in ("la", "laps") else 0)
