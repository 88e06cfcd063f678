"""Sharing trained video models as folders or on the Hugging Face Hub, the way timm shares weights.

A shared model is a folder of two files:

- ``model.safetensors``: the weights in timm's image-model format (``model.backbone.state_dict()``),
  with the checksum of :mod:`laps.integrity`;
- ``config.json``: everything needed to rebuild the model and feed it:
  ``{"laps_version", "backbone", "temporal", "num_frames", "num_classes", "levels", "fold_div",
  "timm_kwargs", "classes", "mean", "std", "img_size", "sampling_rate"}``.

:func:`save_pretrained` writes such a folder (``VideoClassifier.save_pretrained`` calls it),
:func:`from_pretrained` reads one back, from a folder, a Hub repository id, or a ``laps train`` run
directory or weights file. :func:`push_to_hub` uploads a folder with a generated model card
(``README.md``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from laps.atomic import write_text_atomic
from laps.errors import CheckpointError, ConfigError
from laps.integrity import load_safetensors, save_safetensors
from laps.models.factory import create_model
from laps.models.pretrained import normalization
from laps.models.video import VideoClassifier, load_weights_into

CONFIG_NAME, WEIGHTS_NAME, CARD_NAME = "config.json", "model.safetensors", "README.md"
#: weights files of a folder, in the order they are looked for (a run directory has the last two)
RUN_WEIGHTS = (WEIGHTS_NAME, "best.safetensors", "last.safetensors")


def sharing_config(model: VideoClassifier, classes: list[str] | None = None, mean: tuple[float, ...] | None = None,
                   std: tuple[float, ...] | None = None, sampling_rate: int | None = None) -> dict[str, Any]:
    """The ``config.json`` content of ``model``: its architecture, class names and input normalisation
    (default: the mean and std of the backbone's timm weights)."""
    if model.architecture is None:
        raise ConfigError("this model was built with lapsify() from a timm model laps cannot name; build it with "
                          "laps.create_model(...) to save it with save_pretrained")
    if classes is not None and len(classes) != model.num_classes:
        raise ConfigError(f"{len(classes)} class names for a model with {model.num_classes} classes")
    from laps import __version__

    default_mean, default_std = normalization(model.architecture["backbone"])
    config = {
        "laps_version": __version__, **model.architecture, "temporal": model.temporal,
        "num_frames": model.num_frames, "num_classes": model.num_classes, "levels": model.levels,
        "fold_div": model.fold_div, "classes": list(classes) if classes is not None else None,
        "mean": list(mean or default_mean), "std": list(std or default_std),
        "img_size": model.architecture["timm_kwargs"].get("img_size"), "sampling_rate": sampling_rate,
    }
    try:
        json.dumps(config)
    except TypeError as err:
        raise ConfigError(f"the model's timm arguments cannot be written as JSON ({err}); pass plain values") from None
    return config


def save_pretrained(model: VideoClassifier, directory: str | Path, classes: list[str] | None = None,
                    mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                    sampling_rate: int | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` of ``model`` into ``directory`` -> the folder."""
    directory = Path(directory)
    config = sharing_config(model, classes, mean, std, sampling_rate)
    save_safetensors(model.backbone.state_dict(), directory / WEIGHTS_NAME, {"laps_config": json.dumps(config)})
    write_text_atomic(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    return directory


def _model_from_folder(folder: Path, weights: Path | None = None) -> VideoClassifier:
    """The model of a folder with ``config.json``: its ``model.safetensors``, or (a ``laps train`` run
    directory) ``best.safetensors``, else ``last.safetensors``; or the given ``weights`` file."""
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{folder / CONFIG_NAME} is not a laps config ({err})") from None
    needed = ("backbone", "temporal", "num_frames", "num_classes", "timm_kwargs")
    if not isinstance(config, dict) or any(key not in config for key in needed):
        raise CheckpointError(f"{folder / CONFIG_NAME} lacks {', '.join(needed)}; was it written by save_pretrained?")
    if weights is None:
        weights = next((folder / name for name in RUN_WEIGHTS if (folder / name).is_file()), folder / WEIGHTS_NAME)
    tensors, _ = load_safetensors(weights)
    model = create_model(config["backbone"], temporal=config["temporal"], num_frames=config["num_frames"],
                         num_classes=config["num_classes"], levels=config.get("levels"),
                         fold_div=config.get("fold_div", 4), **config["timm_kwargs"])
    load_weights_into(model, tensors, weights)
    model.shared_config = config
    return model.eval()


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


def from_pretrained(source: str | Path, revision: str | None = None) -> VideoClassifier:
    """A model saved with :func:`save_pretrained`, in eval mode on the CPU.

    ``source`` is a folder holding ``config.json`` and ``model.safetensors``, a ``laps train`` run
    directory or weights file, or a Hugging Face Hub repository id (``user/name``; the local cache
    is used, and with ``HF_HUB_OFFLINE=1`` only the cache). A run directory gives its best weights. The sharing config (classes, mean, std,
    ...) is on ``model.shared_config``.
    """
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    if path.exists() and not (folder / CONFIG_NAME).is_file():
        raise CheckpointError(f"{folder} has no {CONFIG_NAME}; runs of laps train write one (since 0.1.0), "
                              "older runs load with laps.engine.inference.load_trained")
    if path.exists():
        return _model_from_folder(folder, path if path.is_file() else None)
    if str(source).count("/") == 1 and not str(source).startswith((".", "/")):
        return _model_from_folder(_download(str(source), revision))
    raise CheckpointError(f"{source} is neither a folder, a run directory, a weights file nor a Hub id 'user/name'")


def model_card(config: dict[str, Any], repo_id: str, run_dir: str | Path | None = None) -> str:
    """A model card (``README.md`` with Hub metadata) for a shared model: architecture, training
    config and metrics of the run (if ``run_dir`` is given), cost, intended use."""
    run = Path(run_dir) if run_dir else None
    summary = json.loads((run / "summary.json").read_text()) if run and (run / "summary.json").is_file() else {}
    training = (run / "config.yaml").read_text() if run and (run / "config.yaml").is_file() else ""
    classes = config.get("classes") or []
    lines = [
        "---", "library_name: laps", "pipeline_tag: video-classification", "tags:", "- video-classification",
        "- laps", f"- {config['temporal']}", "---", "",
        f"# {repo_id}", "",
        f"A {config['temporal']} video classifier over the timm image backbone `{config['backbone']}`, built with "
        "laps (Long-term Leap Attention, Short-term Periodic Shift). It adds no parameter to the image model.", "",
        "## Use", "", "```python", "import laps", "", f'model = laps.from_pretrained("{repo_id}")',
        f"clips = ...  # (B, {config['num_frames']}, 3, {config.get('img_size') or 'H'}, "
        f"{config.get('img_size') or 'W'}), normalised with mean {config['mean']} and std {config['std']}",
        "probs = model(clips).softmax(-1)", "```", "",
        "## Model", "", "| | |", "|---|---|",
        f"| backbone | `{config['backbone']}` |", f"| temporal modelling | {config['temporal']} |",
        f"| frames per clip | {config['num_frames']}"
        + (f" (every {config['sampling_rate']}th frame)" if config.get("sampling_rate") else "") + " |",
        f"| input size | {config.get('img_size') or 'the backbone default'} |",
        f"| classes | {config['num_classes']}" + (f": {', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}" if classes else "") + " |",
    ]
    if summary:
        lines += [f"| parameters | {summary.get('params', 0) / 1e6:.2f}M |",
                  f"| GFLOPs per view | {summary.get('gflops_per_view', 0):.3f} |", "",
                  "## Results", "", "| metric | value |", "|---|---|"]
        for key in ("best_val_top1", "final_val_top1", "best_epoch", "epochs", "wall_time_s"):
            if summary.get(key) is not None:
                value = summary[key]
                lines.append(f"| {key} | {100 * value:.2f}% |" if key.endswith("top1") else f"| {key} | {value} |")
    if training:
        lines += ["", "## Training config", "", "```yaml", training.rstrip(), "```"]
    lines += ["", "## Intended use", "",
              "Classifying short clips of the kind it was trained on into its classes, and as a starting point "
              "for fine-tuning. It has not been evaluated outside its validation data; check it on yours "
              "before relying on it, and do not use it to identify people.", ""]
    return "\n".join(lines)


def push_to_hub(model: VideoClassifier, repo_id: str, run_dir: str | Path | None = None, private: bool = False,
                token: str | None = None, commit_message: str = "Upload laps video model") -> str:
    """Upload ``model`` (:func:`save_pretrained` files and a :func:`model_card`) to the Hugging Face
    Hub repository ``repo_id`` (created if needed) -> the URL of the commit."""
    from huggingface_hub import HfApi

    config = getattr(model, "shared_config", None) or sharing_config(model)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(model, folder, config.get("classes"), config.get("mean"), config.get("std"),
                        config.get("sampling_rate"))
        Path(folder, CARD_NAME).write_text(model_card(config, repo_id, run_dir))
        api = HfApi(token=token or os.environ.get("HF_TOKEN"))
        api.create_repo(repo_id, private=private, exist_ok=True)
        return str(api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message))
