"""The model contract: a trained video model is a folder of ``config.json`` and ``model.safetensors``.

- ``model.safetensors``: the weights in timm's image-model format (``model.backbone.state_dict()``:
  a timm image model loads them as they are), with the checksum of :mod:`laps.integrity`, and the
  content of ``config.json`` under the metadata key :data:`METADATA_KEY`, so that a weights file
  on its own is a whole model too;
- ``config.json``: the model's ``video_cfg`` (:class:`~laps.models.video_config.VideoConfig`), which
  says how to rebuild the model and how to feed it:
  ``{"laps_version", "backbone", "temporal", "num_frames", "num_classes", "img_size", "mean", "std",
  "interpolation", "levels", "fold_div", "timm_kwargs", "classes", "sampling_rate", "sampling"}``.

:func:`save_pretrained` writes such a folder (``VideoClassifier.save_pretrained`` calls it),
:func:`locate` finds the config and weights of a folder, weights file or Hub id, and
:func:`push_to_hub` uploads a folder with a model card. ``laps.from_pretrained``
(:mod:`laps.models.loading`) builds the model.

A ``source`` is a Hub id only when it reads as a bare ``user/name`` (:func:`is_hub_id`); anything
else is a local path, and one that does not exist is refused as such.
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
from laps.models.video_config import VideoConfig

CONFIG_NAME, WEIGHTS_NAME, CARD_NAME = "config.json", "model.safetensors", "README.md"
#: the safetensors metadata key that holds the model config
METADATA_KEY = "laps_config"
#: endings of a weights or config file: a source that ends so is a local path, never a Hub id
LOCAL_SUFFIXES = (".safetensors", ".json", ".pt", ".pth", ".bin", ".ckpt", ".yaml")


def model_config(model: nn.Module, classes: Sequence[str] | None = None, *, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, interpolation: str | None = None,
                 sampling_rate: int | None = None, sampling: str | None = None) -> VideoConfig:
    """The config to save of a :class:`~laps.models.video.VideoClassifier`: its ``video_cfg``, each
    value given (not ``None``) replacing the model's own."""
    if model.video_cfg.backbone is None:
        raise ConfigError("this model was built with lapsify() from a timm model laps cannot name; build it with "
                          "laps.create_model(...) to save it with save_pretrained")
    config = model.video_cfg.updated(classes=classes, mean=mean, std=std, interpolation=interpolation,
                                     sampling_rate=sampling_rate, sampling=sampling)
    try:
        json.dumps(config.to_dict())
    except TypeError as err:
        raise ConfigError(f"the model's timm arguments cannot be written as JSON ({err}); pass plain values") from None
    return config


def save_weights(model: nn.Module, path: str | Path, config: VideoConfig,
                 tensors: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``model.backbone.state_dict()`` (or ``tensors``, the same keys gathered from a sharded
    model) to ``path`` (safetensors, atomically, with its checksum) with ``config`` (a
    :func:`model_config`) in the metadata."""
    tensors = model.backbone.state_dict() if tensors is None else tensors
    save_safetensors(tensors, path, {METADATA_KEY: json.dumps(config.to_dict())})


def write_config(directory: str | Path, config: VideoConfig) -> Path:
    """Write ``config`` as ``directory/config.json`` (atomically) -> its path."""
    path = Path(directory) / CONFIG_NAME
    write_text_atomic(path, json.dumps(config.to_dict(), indent=2) + "\n")
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


def read_config(path: str | Path) -> VideoConfig:
    """The model config in the ``config.json`` at ``path``."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a laps config ({err})") from None
    return VideoConfig.from_dict(raw, path)


def _weights_of(folder: Path) -> Path:
    if (folder / WEIGHTS_NAME).is_file():
        return folder / WEIGHTS_NAME
    raise CheckpointError(f"{folder} holds no {WEIGHTS_NAME}; pass a folder written by save_pretrained, or a run "
                          "directory of laps train after its first epoch")


def load_file(weights: Path) -> tuple[VideoConfig, dict[str, torch.Tensor]]:
    """The model config and tensors of a weights file: the config from its metadata, else from the
    ``config.json`` beside it."""
    tensors, metadata = load_safetensors(weights)
    if METADATA_KEY in metadata:
        raw = json.loads(metadata[METADATA_KEY])
        return VideoConfig.from_dict(raw, f"{weights} (metadata {METADATA_KEY})"), tensors
    if (weights.parent / CONFIG_NAME).is_file():
        return read_config(weights.parent / CONFIG_NAME), tensors
    raise CheckpointError(f"{weights} carries no laps config and has no {CONFIG_NAME} beside it; pass a file "
                          "written by laps train or save_pretrained")


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
    """Whether ``source`` is a Hugging Face Hub id: a ``str`` (a :class:`~pathlib.Path` is a path)
    that is a bare ``user/name``, names no existing path, and whose ``user`` is no local folder.
    One that starts with ``.``, ``/`` or ``~``, has more than one ``/``, or ends like a weights or
    config file (:data:`LOCAL_SUFFIXES`) is a local path."""
    if isinstance(source, Path):
        return False
    parts = source.split("/")
    return (len(parts) == 2 and all(parts) and not source.startswith((".", "~")) and "\\" not in source
            and not source.lower().endswith(LOCAL_SUFFIXES) and not Path(parts[0]).is_dir()
            and not Path(source).exists())


def locate(source: str | Path, revision: str | None = None) -> tuple[VideoConfig, dict[str, torch.Tensor], Path]:
    """Config, tensors and weights path of ``source``: a folder written by :func:`save_pretrained`
    (a ``laps train`` run directory is one: its ``model.safetensors`` holds the best weights), a
    weights file, or a Hugging Face Hub id ``user/name`` (:func:`is_hub_id`; the local cache is
    used, and with ``HF_HUB_OFFLINE=1`` only the cache)."""
    if is_hub_id(source):
        path = _download(str(source), revision)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise CheckpointError(f"no such run directory, folder or weights file: {source}; check the path "
                                  "(only a bare 'user/name' is read as a Hugging Face Hub id)")
    weights = _weights_of(path) if path.is_dir() else path
    config, tensors = load_file(weights)
    return config, tensors, weights


def model_card(config: VideoConfig, repo_id: str, sections: str = "") -> str:
    """A model card (``README.md`` with Hub metadata) of a model ``config``: how to use it, its
    architecture, then ``sections`` (markdown, e.g. the results of its training run), then its
    intended use."""
    classes = config.classes or ()
    rate = f" (every {config.sampling_rate}th frame)" if config.sampling_rate else ""
    named = f": {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}" if classes else ""
    size = config.img_size
    lines = [
        "---", "library_name: laps", "pipeline_tag: video-classification", "tags:", "- video-classification",
        "- laps", f"- {config.temporal}", "---", "",
        f"# {repo_id}", "",
        f"A {config.temporal} video classifier over the timm image backbone `{config.backbone}`, built with "
        "laps (Long-term Leap Attention, Short-term Periodic Shift). It adds no parameter to the image model.", "",
        "## Use", "", "```python", "import laps", "", f'model = laps.from_pretrained("{repo_id}")',
        f"clips = ...  # (B, {config.num_frames}, 3, {size}, {size}), resized with {config.interpolation} "
        f"interpolation, normalised with mean {list(config.mean)} and std {list(config.std)}",
        "probs = model(clips).softmax(-1)", "```", "",
        "or on video files: `laps predict --checkpoint " + repo_id + " video.mp4`", "",
        "## Model", "", "| | |", "|---|---|",
        f"| backbone | `{config.backbone}` |", f"| temporal modelling | {config.temporal} |",
        f"| frames per clip | {config.num_frames}{rate} |",
        f"| input size | {size} |",
        f"| classes | {config.num_classes}{named} |", "",
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
    """Upload ``model`` (:func:`save_pretrained` files of its ``video_cfg``) and a
    model card (default: :func:`model_card`) to the Hugging Face Hub repository ``repo_id``
    (created if needed) -> the URL of the commit."""
    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(model, folder)
        Path(folder, CARD_NAME).write_text(card if card is not None else model_card(model.video_cfg, repo_id))
        api = HfApi(token=token or os.environ.get("HF_TOKEN"))
        api.create_repo(repo_id, private=private, exist_ok=True)
        return str(api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message))
