"""The model contract: a trained video model is a folder of ``config.json`` and ``model.safetensors``.

- ``model.safetensors``: the weights in timm's image-model format (``model.backbone.state_dict()``:
  a timm image model loads them as they are), with the checksum of :mod:`laps.integrity`, and the
  content of ``config.json`` under the metadata key :data:`METADATA_KEY`, so that a weights file
  on its own is a whole model too;
- ``config.json``: everything needed to rebuild the model and to feed it (:func:`model_config`):
  ``{"laps_version", "backbone", "temporal", "num_frames", "num_classes", "levels", "fold_div",
  "timm_kwargs", "classes", "img_size", "mean", "std", "interpolation", "sampling_rate", "sampling"}``.
  ``mean``, ``std`` and ``interpolation`` default to those of the backbone's timm weights
  (their ``pretrained_cfg``: CLIP's are not ImageNet's); ``sampling_rate`` and ``sampling``
  (``"dense"`` or ``"segment"``) say how the frames of a clip are taken, ``None`` if not recorded.

:func:`save_pretrained` writes such a folder (``VideoClassifier.save_pretrained`` calls it),
:func:`locate` finds the config and weights of a folder, weights file or Hub id (and of a run
directory of the first 0.1.0 layout, through :mod:`laps.models.legacy`), and :func:`push_to_hub`
uploads a folder with a model card. ``laps.from_pretrained`` (:mod:`laps.models.loading`) builds
the model.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from laps.atomic import write_text_atomic
from laps.errors import CheckpointError, ConfigError
from laps.integrity import load_safetensors, save_safetensors
from laps.models import legacy
from laps.models.pretrained import interpolation as weights_interpolation
from laps.models.pretrained import normalization
from laps.version import __version__

CONFIG_NAME, WEIGHTS_NAME, CARD_NAME = "config.json", "model.safetensors", "README.md"
#: the safetensors metadata key that holds the model config
METADATA_KEY = "laps_config"
#: keys without which a config cannot rebuild its model
REQUIRED = ("backbone", "temporal", "num_frames", "num_classes", "timm_kwargs")
#: what a config that does not record it means (models saved before the key existed were fed so)
INPUT_DEFAULTS = {"interpolation": "bilinear", "sampling": "dense", "sampling_rate": None}


def model_config(model: nn.Module, classes: list[str] | None = None, *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, interpolation: str | None = None,
                 sampling_rate: int | None = None, sampling: str | None = None) -> dict[str, Any]:
    """The ``config.json`` content of a :class:`~laps.models.video.VideoClassifier`: its architecture,
    class names and how to feed it. What is not given (``None``) comes from the config the model was
    loaded with (``model.shared_config``), else from the backbone's timm weights (``mean``, ``std``,
    ``interpolation``), else is not recorded (``sampling_rate``; ``sampling`` is ``"dense"``)."""
    if model.architecture is None:
        raise ConfigError("this model was built with lapsify() from a timm model laps cannot name; build it with "
                          "laps.create_model(...) to save it with save_pretrained")
    loaded = getattr(model, "shared_config", None) or {}
    backbone = model.architecture["backbone"]
    weights_mean, weights_std = normalization(backbone)
    given = {"classes": classes, "mean": mean, "std": std, "interpolation": interpolation,
             "sampling_rate": sampling_rate, "sampling": sampling}
    fallback = {"classes": None, "mean": weights_mean, "std": weights_std, "interpolation": weights_interpolation(backbone),
                "sampling_rate": None, "sampling": "dense"}
    chosen = {key: next((v for v in (value, loaded.get(key)) if v is not None), fallback[key])
              for key, value in given.items()}
    if chosen["classes"] is not None and len(chosen["classes"]) != model.num_classes:
        raise ConfigError(f"{len(chosen['classes'])} class names for a model with {model.num_classes} classes")
    config = {
        "laps_version": __version__, **model.architecture, "temporal": model.temporal,
        "num_frames": model.num_frames, "num_classes": model.num_classes, "levels": model.levels,
        "fold_div": model.fold_div,
        "img_size": model.architecture["timm_kwargs"].get("img_size") or model.backbone.pretrained_cfg["input_size"][-1],
        **chosen, "classes": None if chosen["classes"] is None else list(chosen["classes"]),
        "mean": [float(v) for v in chosen["mean"]], "std": [float(v) for v in chosen["std"]],
    }
    try:
        json.dumps(config)
    except TypeError as err:
        raise ConfigError(f"the model's timm arguments cannot be written as JSON ({err}); pass plain values") from None
    return config


def save_weights(model: nn.Module, path: str | Path, config: dict[str, Any],
                 tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``model.backbone.state_dict()`` (or ``tensors``, the same keys gathered from a sharded
    model) to ``path`` (safetensors, atomically, with its checksum) with ``config`` (a
    :func:`model_config`) in the metadata."""
    tensors = model.backbone.state_dict() if tensors is None else tensors
    save_safetensors(tensors, path, {METADATA_KEY: json.dumps(config)})


def write_config(directory: str | Path, config: dict[str, Any]) -> Path:
    """Write ``config`` as ``directory/config.json`` (atomically) -> its path."""
    path = Path(directory) / CONFIG_NAME
    write_text_atomic(path, json.dumps(config, indent=2) + "\n")
    return path


def save_pretrained(model: nn.Module, directory: str | Path, classes: list[str] | None = None,
                    **inputs: Any) -> Path:
    """Write ``config.json`` and ``model.safetensors`` of ``model`` into ``directory`` -> the folder.
    ``inputs`` (``mean``, ``std``, ``interpolation``, ``sampling_rate``, ``sampling``): see
    :func:`model_config`."""
    directory = Path(directory)
    config = model_config(model, classes, **inputs)
    save_weights(model, directory / WEIGHTS_NAME, config)
    write_config(directory, config)
    return directory


def check_config(config: Any, source: str | Path) -> dict[str, Any]:
    """``config`` if it is a model config (with :data:`INPUT_DEFAULTS` filled in), else a
    :class:`CheckpointError` naming ``source``."""
    if not isinstance(config, dict) or any(key not in config for key in REQUIRED):
        raise CheckpointError(f"{source} lacks {', '.join(REQUIRED)}; was it written by save_pretrained?")
    return {**INPUT_DEFAULTS, **config}


def read_config(path: str | Path) -> dict[str, Any]:
    """The model config in the ``config.json`` at ``path``."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a laps config ({err})") from None
    return check_config(config, path)


def _weights_of(folder: Path) -> Path:
    for path in (folder / WEIGHTS_NAME, *(folder / name for name in legacy.RUN_WEIGHTS)):
        if path.is_file():
            return path
    raise CheckpointError(f"{folder} holds no {WEIGHTS_NAME}; pass a folder written by save_pretrained, or a run "
                          "directory of laps train after its first epoch")


def load_file(weights: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The model config and tensors of a weights file: the config from its metadata, else from the
    ``config.json`` beside it; a weights file of the first run directory layout is read by
    :mod:`laps.models.legacy`."""
    tensors, metadata = load_safetensors(weights)
    raw = json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else None
    if raw is not None and not legacy.is_run_config(raw):
        return check_config(raw, f"{weights} (metadata {METADATA_KEY})"), tensors
    if raw is None and (weights.parent / CONFIG_NAME).is_file():
        return read_config(weights.parent / CONFIG_NAME), tensors
    config = legacy.model_config(weights, raw, metadata)
    if config is None:
        raise CheckpointError(f"{weights} carries no laps config and has no {CONFIG_NAME} beside it; pass a file "
                              "written by laps train or save_pretrained")
    return check_config(config, weights), tensors


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME]))
    except LocalEntryNotFoundError:
        raise CheckpointError(f"{repo_id!r} is not in the local Hugging Face cache and the Hub cannot be reached; "
                              "pass a local folder, or download it where there is network") from None
    except (HfHubHTTPError, ValueError, OSError) as err:
        raise CheckpointError(f"cannot fetch {repo_id!r} from the Hugging Face Hub: {str(err).splitlines()[0]}") from None


def is_hub_id(source: str | Path) -> bool:
    """Whether ``source`` names no local path and reads as a Hub repository id ``user/name``."""
    text = str(source)
    return not Path(text).exists() and text.count("/") == 1 and not text.startswith((".", "/", "~"))


def locate(source: str | Path, revision: str | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """Config, tensors and weights path of ``source``: a folder written by :func:`save_pretrained`
    (a ``laps train`` run directory is one: its ``model.safetensors`` holds the best weights), a
    weights file, or a Hugging Face Hub id ``user/name`` (the local cache is used, and with
    ``HF_HUB_OFFLINE=1`` only the cache)."""
    path = Path(source)
    if is_hub_id(source):
        path = _download(str(source), revision)
    elif not path.exists():
        raise CheckpointError(f"{source} is neither a folder, a run directory, a weights file nor a Hub id 'user/name'")
    weights = _weights_of(path) if path.is_dir() else path
    config, tensors = load_file(weights)
    return config, tensors, weights


def model_card(config: dict[str, Any], repo_id: str, sections: str = "") -> str:
    """A model card (``README.md`` with Hub metadata) of a model ``config``: how to use it, its
    architecture, then ``sections`` (markdown, e.g. the results of its training run), then its
    intended use."""
    classes = config.get("classes") or []
    size = config.get("img_size") or "H"
    rate = f" (every {config['sampling_rate']}th frame)" if config.get("sampling_rate") else ""
    named = f": {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}" if classes else ""
    lines = [
        "---", "library_name: laps", "pipeline_tag: video-classification", "tags:", "- video-classification",
        "- laps", f"- {config['temporal']}", "---", "",
        f"# {repo_id}", "",
        f"A {config['temporal']} video classifier over the timm image backbone `{config['backbone']}`, built with "
        "laps (Long-term Leap Attention, Short-term Periodic Shift). It adds no parameter to the image model.", "",
        "## Use", "", "```python", "import laps", "", f'model = laps.from_pretrained("{repo_id}")',
        f"clips = ...  # (B, {config['num_frames']}, 3, {size}, {size}), resized with {config.get('interpolation')} "
        f"interpolation, normalised with mean {config['mean']} and std {config['std']}",
        "probs = model(clips).softmax(-1)", "```", "",
        "or on video files: `laps predict --checkpoint " + repo_id + " video.mp4`", "",
        "## Model", "", "| | |", "|---|---|",
        f"| backbone | `{config['backbone']}` |", f"| temporal modelling | {config['temporal']} |",
        f"| frames per clip | {config['num_frames']}{rate} |",
        f"| input size | {config.get('img_size') or 'the backbone default'} |",
        f"| classes | {config['num_classes']}{named} |", "",
    ]
    if sections:
        lines += [sections.rstrip(), ""]
    lines += ["## Intended use", "",
              "Classifying short clips of the kind it was trained on into its classes, and as a starting point "
              "for fine-tuning. It has not been evaluated outside its validation data; check it on yours "
              "before relying on it, and do not use it to identify people.", ""]
    return "\n".join(lines)


def push_to_hub(model: nn.Module, repo_id: str, card: str | None = None, private: bool = False,
                token: str | None = None, commit_message: str = "Upload laps video model") -> str:
    """Upload ``model`` (:func:`save_pretrained` files, with the config it was loaded with) and a
    model card (default: :func:`model_card`) to the Hugging Face Hub repository ``repo_id``
    (created if needed) -> the URL of the commit."""
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(model, folder)
        config = read_config(Path(folder, CONFIG_NAME))
        Path(folder, CARD_NAME).write_text(card if card is not None else model_card(config, repo_id))
        api = HfApi(token=token or os.environ.get("HF_TOKEN"))
        api.create_repo(repo_id, private=private, exist_ok=True)
        return str(api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message))
