"""OpCounter: copies and the bytes they write, and the attention kernel behind SDPA."""

import torch
import torch.nn.functional as F

from laps.analysis.dispatch import OpCounter


def test_counts_copies_and_the_bytes_they_write():
    x = torch.randn(4, 8)
    out = torch.empty(4, 8)
    with OpCounter() as counter:
        y = x.clone()  # 128 bytes
        out[:, :2].copy_(x[:, :2])  # 32 bytes through a strided view
        out[[0, 3]] = x[[1, 2]]  # a gather (64 bytes) and an indexed write (64 bytes)
        z = (y + 1).sum()  # arithmetic: not a copy
    assert counter.copies == 4
    assert counter.copy_bytes == 128 + 32 + 64 + 64
    assert counter.ops["add"] == 1 and z.dim() == 0


def test_views_are_not_copies():
    x = torch.randn(2, 3, 4)
    with OpCounter() as counter:
        x.transpose(0, 1).unflatten(2, (2, 2)).flatten(2, 3)
        x.flatten(1, 2)
    assert counter.copies == 0 and counter.copy_bytes == 0


def test_records_the_attention_backend():
    q = torch.randn(2, 3, 16, 8)
    with OpCounter() as counter:
        F.scaled_dot_product_attention(q, q, q)
        F.scaled_dot_product_attention(q, q, q, attn_mask=torch.ones(16, 16, dtype=torch.bool))
        # a head dim that is not contiguous: no fused kernel takes it, SDPA falls back to math
        F.scaled_dot_product_attention(*(q.transpose(-1, -2).contiguous().transpose(-1, -2),) * 3)
    assert counter.attention == ["flash (cpu)", "flash (cpu)", "math"]
