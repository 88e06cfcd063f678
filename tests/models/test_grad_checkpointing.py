"""Activation checkpointing: the same forward output and gradients with and without it, for every
family and the temporal variants (frame-group attention and the shift recomputed in the backward),
with the blocks really run twice."""

import copy

import pytest
import torch

import laps

#: family -> (timm model, tiny overrides)
FAMILIES = {
    "vit": ("vit_tiny_patch16_224", {"img_size": 32, "patch_size": 8, "depth": 2}),
    "eva02": ("eva02_tiny_patch14_224", {"img_size": 28, "depth": 2}),  # rotary embedding passed to each block
    "visformer": ("visformer_tiny", {"img_size": 32, "depth": (1, 1, 1)}),  # checkpointed by stage, BatchNorm
}
#: the rows of the quick selection; the other variants, and base2d on Visformer, are slow
QUICK = {("vit", "base2d"), ("vit", "laps"), ("eva02", "base2d"), ("eva02", "laps"), ("visformer", "laps")}


def _run(model, clips):
    """Forward and backward in training mode -> (logits, parameter gradients, input gradient, attention calls)."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in model.attention_modules]
    clips = clips.clone().requires_grad_(True)
    torch.manual_seed(1)  # drop path draws the same masks in both runs
    logits = model(clips)
    (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
    for hook in hooks:
        hook.remove()
    return logits, {n: p.grad for n, p in model.named_parameters()}, clips.grad, len(calls)


@pytest.mark.parametrize("family, temporal", [
    pytest.param(f, t, marks=() if (f, t) in QUICK else pytest.mark.slow) for f in FAMILIES for t in sorted(laps.VARIANTS)])
def test_checkpointing_gives_the_same_output_and_gradients(family, temporal):
    name, kwargs = FAMILIES[family]
    torch.manual_seed(0)
    model = laps.create_model(name, temporal=temporal, num_frames=4, num_classes=5, drop_path_rate=0.1, **kwargs).train()
    clips = torch.randn(2, 4, 3, kwargs["img_size"], kwargs["img_size"], generator=torch.Generator().manual_seed(2))

    logits, grads, clip_grad, calls = _run(copy.deepcopy(model), clips)
    model.set_grad_checkpointing(True)
    logits_ckpt, grads_ckpt, clip_grad_ckpt, calls_ckpt = _run(model, clips)

    assert calls_ckpt == 2 * calls == 2 * len(model.attention_modules)  # recomputed in the backward
    torch.testing.assert_close(logits_ckpt, logits)
    torch.testing.assert_close(clip_grad_ckpt, clip_grad)
    assert grads.keys() == grads_ckpt.keys()
    for key, grad in grads.items():
        assert grad is not None, key
        torch.testing.assert_close(grads_ckpt[key], grad, msg=key)


def test_checkpointing_turns_off_again():
    name, kwargs = FAMILIES["vit"]
    model = laps.create_model(name, temporal="laps", num_frames=4, **kwargs).train()
    model.set_grad_checkpointing()
    assert _run(model, torch.randn(1, 4, 3, 32, 32))[3] == 2 * len(model.attention_modules)
    model.set_grad_checkpointing(False)
    assert _run(model, torch.randn(1, 4, 3, 32, 32))[3] == len(model.attention_modules)
