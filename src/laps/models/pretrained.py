"""Load 2D image checkpoints into a timm backbone: local .safetensors / .pth / .npz files.

Online users get timm's own download with ``pretrained=True``; this module handles files.
The classifier is dropped when its class count differs, and position embeddings are resized
to the model's image size (ViT through timm's own filter, Visformer's 2-D maps bicubically).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from timm.models import load_state_dict
from torch import nn

from laps.errors import CheckpointError
from laps.models.visformer import is_visformer
from laps.models.vit import is_vit


def _classifier_keys(model: nn.Module) -> tuple[str, ...]:
    names = model.pretrained_cfg.get("classifier", "head") if hasattr(model, "pretrained_cfg") else "head"
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{name}.{p}" for name in names for p in ("weight", "bias"))


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_state_dict(str(path), use_ema=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear message
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc


def adapt_state_dict(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Make a 2D checkpoint fit ``model``: resize position embeddings, drop a classifier of
    another class count; raise :class:`CheckpointError` for any other mismatch."""
    if is_vit(model):
        from timm.models.vision_transformer import checkpoint_filter_fn

        state_dict = checkpoint_filter_fn(state_dict, model)
    target = model.state_dict()
    head = _classifier_keys(model)
    adapted = {}
    for key, value in state_dict.items():
        if key not in target or value.shape == target[key].shape:
            adapted[key] = value
        elif key in head:
            continue
        elif is_visformer(model) and key.startswith("pos_embed") and value.dim() == 4:
            adapted[key] = F.interpolate(value.float(), size=target[key].shape[-2:], mode="bicubic").to(value.dtype)
        else:
            raise CheckpointError(
                f"checkpoint tensor {key} has shape {tuple(value.shape)} but the model expects "
                f"{tuple(target[key].shape)}; is the checkpoint for another backbone?"
            )
    missing = [k for k in target if k not in adapted and k not in head]
    unexpected = [k for k in adapted if k not in target]
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint does not match {type(model).__name__}: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]}); "
            "is it a checkpoint of this backbone?"
        )
    return adapted


def load_pretrained_file(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a local 2D checkpoint (``.safetensors``, ``.pth``/``.pt``/``.bin``, or a big_vision
    ``.npz`` for ViTs) into the timm image ``model`` in place and return it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"pretrained checkpoint {path} does not exist; pass an existing file or pretrained=True")
    if path.suffix == ".npz":
        if not is_vit(model):
            raise CheckpointError(f".npz checkpoints are big_vision ViT weights; {type(model).__name__} cannot load {path}")
        model.load_pretrained(str(path))
        return model
    adapted = adapt_state_dict(_read(path), model)
    model.load_state_dict(adapted, strict=False)
    return model
