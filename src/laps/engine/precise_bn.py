"""Precise BatchNorm: running statistics recomputed over many training batches before evaluation.

During training a BatchNorm layer's running mean and variance are moving averages of small-batch
statistics taken while the weights change, so they lag and are noisy. Before each evaluation,
:func:`recompute_bn_stats` runs ``N`` training batches through the model (train mode, no
gradients) and sets every BatchNorm layer's running mean and variance to the exact mean and
(unbiased) variance of all the inputs it saw; under DDP, of the inputs of every process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import islice

import torch
from torch import nn

from laps.engine.builders import set_train_mode
from laps.infer.distributed import all_reduce_tensor


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` that keep running statistics, but for frozen ones
    (``optim.train``): those keep the statistics of the weights they came with."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            and not (m.affine and not m.weight.requires_grad)]


class _Moments:
    """Per-channel count, sum and sum of squares (float64) of a BatchNorm layer's inputs ``(N, C, ...)``."""

    def __init__(self) -> None:
        self.count, self.total, self.squares = 0, None, None

    def __call__(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach().double().transpose(0, 1).flatten(1)  # (C, everything else)
        self.count += x.shape[1]
        total, squares = x.sum(1), (x * x).sum(1)
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor], num_batches: int,
                       forward: Callable[[nn.Module, torch.Tensor], object] | None = None) -> int:
    """Set the running mean and variance of every BatchNorm layer of ``model`` to the exact
    statistics of its inputs over the first ``num_batches`` of ``batches``, summed over processes.

    ``forward(model, batch)`` runs one batch (default: ``model(batch)``; pass one that moves,
    normalises and autocasts). The model runs in train mode, as in training (its frozen parts in eval
    mode, :func:`~laps.engine.builders.set_train_mode`), and is put back in the mode it had. Returns the number of batches used (0 when the model has no BatchNorm layer).
    """
    layers = batch_norms(model)
    if not layers or num_batches <= 0:
        return 0
    moments = [_Moments() for _ in layers]
    hooks = [layer.register_forward_pre_hook(m) for layer, m in zip(layers, moments)]
    run = forward or (lambda module, batch: module(batch))
    was_training = model.training
    set_train_mode(model)
    used = 0
    try:
        for batch in islice(batches, num_batches):  # no batch beyond the last one is loaded
            run(model, batch)
            used += 1
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for layer, m in zip(layers, moments):
        if m.total is None:
            continue
        stats = all_reduce_tensor(torch.cat([m.total, m.squares, m.total.new_tensor([m.count])]))
        total, squares, count = stats[: layer.num_features], stats[layer.num_features: -1], stats[-1]
        mean = total / count
        var = (squares - count * mean * mean) / (count - 1).clamp(min=1)
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
    return used
