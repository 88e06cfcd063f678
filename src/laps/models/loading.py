"""``laps.from_pretrained``: the one loader of trained video models, for Python and every command."""

from __future__ import annotations

from pathlib import Path

from laps.models.factory import create_model
from laps.models.sharing import locate
from laps.models.video import VideoClassifier, load_weights_into


def from_pretrained(source: str | Path, revision: str | None = None) -> VideoClassifier:
    """A trained model, in eval mode on the CPU.

    ``source`` is a folder written by ``model.save_pretrained`` (``config.json`` and
    ``model.safetensors``), a ``laps train`` run directory (its best weights; also one of the first
    layout, with ``best.safetensors``), a weights file (``model.safetensors``, ``last.safetensors``),
    or a Hugging Face Hub repository id ``user/name`` (the local cache is used, and with
    ``HF_HUB_OFFLINE=1`` only the cache); ``revision`` is the Hub revision. What the model needs
    to be fed (classes, img_size, mean, std, interpolation, sampling_rate, sampling) is on
    ``model.shared_config``, the content of its ``config.json`` (see :mod:`laps.models.sharing`).
    """
    config, tensors, weights = locate(source, revision)
    model = create_model(config["backbone"], temporal=config["temporal"], num_frames=config["num_frames"],
                         num_classes=config["num_classes"], levels=config.get("levels"),
                         fold_div=config.get("fold_div", 4), **config["timm_kwargs"])
    load_weights_into(model, tensors, weights)
    model.shared_config = config
    return model.eval()
