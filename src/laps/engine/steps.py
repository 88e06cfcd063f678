"""What one training step draws and uses: its seed, its learning rate, its mixed batch.

A step's randomness comes from ``(seed, epoch, step)`` alone (:func:`step_seed`), so a run resumed
at any step draws what the uninterrupted run drew.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from laps.engine.config import OptimConfig


def lr_lambda(steps_per_epoch: int, *, schedule: str, epochs: int, warmup_epochs: float = 0.0,
              milestones: Sequence[int] = (), gamma: float = 0.1) -> Callable[[int], float]:
    """Per-step LR multiplier: linear warm-up, then cosine / step (milestones in epochs) / constant."""
    warmup = warmup_epochs * steps_per_epoch
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
        if schedule == "step":
            return gamma ** sum(step >= m * steps_per_epoch for m in milestones)
        return 1.0

    return factor


def step_seed(seed: int, epoch: int, step: int, stream: int = 0) -> int:
    """Seed of one training step's randomness (stream 0: dropout and drop-path; 1: mixup / cutmix)."""
    return int(np.random.SeedSequence([seed, epoch, step, stream]).generate_state(1)[0])


def mix_batch(clips: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator, *,
              mixup: float = 0.0, cutmix: float = 0.0, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (Beta alphas; chosen at random when both are on) on ``(B, T, C, H, W)``; the
    same box for every frame. Returns mixed clips and soft targets ``(B, K)`` with label smoothing."""
    smooth = label_smoothing
    targets = F.one_hot(labels, num_classes).float() * (1 - smooth) + smooth / num_classes
    if mixup <= 0 and cutmix <= 0:
        return clips, targets
    use_cutmix = cutmix > 0 and (mixup == 0 or torch.rand((), generator=generator) < 0.5)
    alpha = cutmix if use_cutmix else mixup
    lam = float(torch.distributions.Beta(alpha, alpha).sample()) if alpha else 1.0
    partner = clips.flip(0)
    if use_cutmix:
        height, width = clips.shape[-2:]
        cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
        cy = int(torch.randint(height, (), generator=generator))
        cx = int(torch.randint(width, (), generator=generator))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        clips = clips.clone()
        clips[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (height * width)
    else:
        clips = lam * clips + (1 - lam) * partner
    return clips, lam * targets + (1 - lam) * targets.flip(0)


def build_scheduler(optimizer: torch.optim.Optimizer, steps_per_epoch: int, o: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step :func:`lr_lambda` schedule of ``optim``, times each group's layer-decay scale (timm
    puts it in ``lr_scale``, for its own schedulers to apply)."""
    factor = lr_lambda(steps_per_epoch, schedule=o.schedule, epochs=o.epochs, warmup_epochs=o.warmup_epochs,
                       milestones=o.milestones, gamma=o.gamma)
    scales = [group.get("lr_scale", 1.0) for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, [lambda step, scale=scale: scale * factor(step) for scale in scales])
