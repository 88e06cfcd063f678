"""2D image weights for a timm backbone: which hub weights ``pretrained=True`` means, their
``pretrained_cfg`` (how they were trained), a fast and clear failure without network, and local .safetensors / .pth / .npz files.

``pretrained=True`` loads timm's hub weights: for the paper's backbones the weights the paper
starts from (:data:`PAPER_WEIGHTS`), else timm's default tag. A local file goes through its family's
checkpoint filter (timm's ``checkpoint_filter_fn`` of the family: position embeddings resampled to
the model's image size), and the classifier is dropped when its class count differs.
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import torch
from timm.models import get_pretrained_cfg, load_state_dict
from torch import nn

from laps.errors import CheckpointError
from laps.integrity import load_error
from laps.models.registry import family_of

#: backbone -> the timm weights the paper fine-tunes from (``pretrained=True`` with the bare name)
PAPER_WEIGHTS = {
    "visformer_small": "visformer_small.in1k",
    "vit_base_patch16_224": "vit_base_patch16_224.augreg_in21k",
    "vit_large_patch16_224": "vit_large_patch16_224.augreg_in21k",
}
#: seconds to wait for the hub before saying it cannot be reached
HUB_TIMEOUT = 3.0


def weights_name(backbone: str) -> str:
    """The timm ``name.tag`` whose weights ``pretrained=True`` loads: a name with a tag as it is,
    a paper backbone's :data:`PAPER_WEIGHTS`, else timm's default tag."""
    if "." in backbone:
        return backbone
    if backbone in PAPER_WEIGHTS:
        return PAPER_WEIGHTS[backbone]
    cfg = get_pretrained_cfg(backbone)
    return f"{backbone}.{cfg.tag}" if cfg is not None and cfg.tag else backbone


def weights_cfg(backbone: str):
    """timm's ``pretrained_cfg`` of the weights :func:`weights_name` names (how they were trained:
    mean, std, interpolation, input size); ``None`` when timm knows no weights for the backbone."""
    return get_pretrained_cfg(weights_name(backbone))


def _hub_unreachable(endpoint: str) -> str | None:
    """Why the hub at ``endpoint`` cannot be reached (None if a connection opens in time, or if a
    proxy is configured: then only the download itself can tell)."""
    url = urlparse(endpoint)
    if urllib.request.getproxies().get(url.scheme):
        return None
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=HUB_TIMEOUT).close()
    except OSError as err:
        return f"{url.hostname} cannot be reached ({err.strerror or err})"
    return None


def check_hub_weights(name: str) -> None:
    """Fail at once, in one line, when the hub weights of timm model ``name`` are neither in the
    local cache nor downloadable (``HF_HUB_OFFLINE`` set, or the hub unreachable), instead of the
    hub client's minute of retries. Weights that timm does not host on the hub pass unchecked."""
    from huggingface_hub import constants, try_to_load_from_cache

    cfg = get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        return
    repo = cfg.hf_hub_id.split("@")[0]
    if any(isinstance(try_to_load_from_cache(repo, f), str) for f in ("model.safetensors", "pytorch_model.bin")):
        return
    reason = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else _hub_unreachable(constants.ENDPOINT)
    if reason:
        cache = Path(constants.HF_HUB_CACHE) / ("models--" + repo.replace("/", "--"))
        raise CheckpointError(
            f"timm weights {name!r} (hub repo {repo}) are not in the local cache {cache} and {reason}; download them "
            f"once where there is network (timm.create_model({name!r}, pretrained=True)) and copy that folder "
            "there, or pass pretrained='path/to/weights.safetensors'"
        )


def _classifier_keys(model: nn.Module) -> tuple[str, ...]:
    names = model.pretrained_cfg.get("classifier", "head") if hasattr(model, "pretrained_cfg") else "head"
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(f"{name}.{p}" for name in names for p in ("weight", "bias"))


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_state_dict(str(path), use_ema=True, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear message
        raise load_error(path, exc, "checkpoint") from exc


def adapt_state_dict(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Make a 2D checkpoint fit the timm image ``model``: its family's checkpoint filter (position
    embeddings resampled), a classifier of another class count dropped; raise
    :class:`CheckpointError` for any other mismatch."""
    family = family_of(model)
    try:
        state_dict = family.filter_checkpoint(state_dict, model)
    except (RuntimeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint does not fit this {family.name} model ({exc}); "
                              "is it a checkpoint of this backbone?") from exc
    target = model.state_dict()
    head = _classifier_keys(model)
    adapted = {}
    for key, value in state_dict.items():
        if key not in target or value.shape == target[key].shape:
            adapted[key] = value
        elif key in head:
            continue
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
    ``.npz`` for a family whose record has ``load_npz``) into the timm image ``model`` in place
    and return it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"pretrained checkpoint {path} does not exist; pass an existing file or pretrained=True")
    if path.suffix == ".npz":
        family = family_of(model)
        if family.load_npz is None:
            raise CheckpointError(f".npz checkpoints are big_vision weights, which the {family.name} family has none "
                                  f"of; {type(model).__name__} cannot load {path}")
        family.load_npz(model, str(path))
        return model
    adapted = adapt_state_dict(_read(path), model)
    model.load_state_dict(adapted, strict=False)
    return model
