"""Class probabilities of a model over the test views of videos, under optional autocast."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import nn


def autocast(device: torch.device, amp: str):
    """Autocast context for ``amp`` in {none, bf16, fp16} on ``device``."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@torch.no_grad()
def predict_views(model: nn.Module, views: torch.Tensor, normalize: Callable[[torch.Tensor], torch.Tensor],
                  amp: str = "none", chunk: int = 16) -> torch.Tensor:
    """Class probabilities ``(B, K)`` of uint8 ``views (B, V, T, C, H, W)``, normalised on the
    model's device by ``normalize`` (a dataset's): softmax per view, averaged."""
    batch, num_views = views.shape[:2]
    flat = views.flatten(0, 1)
    device = next(model.parameters()).device
    probs = []
    for start in range(0, flat.shape[0], chunk):
        with autocast(device, amp):
            logits = model(normalize(flat[start : start + chunk].to(device, non_blocking=True)))
        probs.append(logits.float().softmax(-1))
    return torch.cat(probs).unflatten(0, (batch, num_views)).mean(1)
