"""``laps.from_pretrained``: the one loader of trained video models, for Python and every command."""

from __future__ import annotations

from pathlib import Path

from laps.models.factory import model_from_config
from laps.models.sharing import locate
from laps.models.video import VideoClassifier, load_weights_into


def from_pretrained(source: str | Path, revision: str | None = None) -> VideoClassifier:
    """A trained model, in eval mode on the CPU.

    ``source`` is a folder written by ``model.save_pretrained`` (``config.json`` and
    ``model.safetensors``), a ``laps train`` run directory (its best weights), a weights file
    (``model.safetensors``, ``last.safetensors``), or a Hugging Face Hub repository id: a bare
    ``user/name`` with no local folder ``user`` (the local cache is used, and with
    ``HF_HUB_OFFLINE=1`` only the cache); ``revision`` is the Hub revision. A path that does not
    exist is refused as such, never looked up on the Hub. What the model needs to be fed
    (classes, img_size, mean, std, interpolation, sampling_rate, sampling) is on
    ``model.video_cfg``, read from its ``config.json`` (see :mod:`laps.models.sharing`).
    """
    config, tensors, weights = locate(source, revision)
    model = model_from_config(config)
    load_weights_into(model, tensors, weights)
    return model.eval()
