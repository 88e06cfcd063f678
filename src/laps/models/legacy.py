"""Run directories of the first laps 0.1.0 layout, read as model configs.

Such a directory holds ``best.safetensors`` and ``last.safetensors``, whose metadata carries the
whole training config of the run under ``laps_config`` (sections ``model``, ``data``, ``optim``,
``runtime``) and the class names under ``laps_classes``, with ``config.yaml`` and ``classes.json``
beside them. That layout is fixed, so its keys are read here as they were written. Its models
were fed frames resized with bilinear interpolation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from laps.errors import CheckpointError
from laps.models.pretrained import NORMS, normalization

#: weights files of a first-layout run directory, in the order they are looked for
RUN_WEIGHTS = ("best.safetensors", "last.safetensors")
RUN_CONFIG, RUN_CLASSES, CLASSES_KEY = "config.yaml", "classes.json", "laps_classes"
#: model keys of the run config passed to timm when they are set
SIZE_KEYS = ("patch_size", "depth", "embed_dim", "num_heads", "global_pool")


def is_run_config(raw: Any) -> bool:
    """Whether ``raw`` is a training config of the first layout (its ``model`` is a section)."""
    return isinstance(raw, dict) and isinstance(raw.get("model"), dict)


def _beside(weights: Path, name: str) -> Any:
    path = weights.parent / name
    if not path.is_file():
        return None
    try:
        if name.endswith(".yaml"):
            import yaml  # a dependency of timm and huggingface_hub

            return yaml.safe_load(path.read_text())
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:  # yaml.YAMLError is a ValueError
        raise CheckpointError(f"{path} cannot be read ({err})") from None


def _classes(weights: Path, metadata: dict[str, str]) -> list[str]:
    classes = json.loads(metadata[CLASSES_KEY]) if CLASSES_KEY in metadata else _beside(weights, RUN_CLASSES)
    if isinstance(classes, dict):  # {name: index}
        classes = [name for name, _ in sorted(classes.items(), key=lambda item: int(item[1]))]
    if not isinstance(classes, list):
        raise CheckpointError(f"{weights} carries no class names and has no {RUN_CLASSES} beside it; was it written "
                              "by laps train?")
    return classes


def model_config(weights: Path, raw: dict[str, Any] | None, metadata: dict[str, str]) -> dict[str, Any] | None:
    """The model config of a first-layout weights file: from its training config ``raw`` (its
    metadata), else from the ``config.yaml`` beside it; ``None`` if there is neither."""
    raw = raw if raw is not None else _beside(weights, RUN_CONFIG)
    if not is_run_config(raw):
        return None
    classes = _classes(weights, metadata)
    m, d = raw["model"], raw.get("data") or {}
    backbone = m.get("backbone", "vit_tiny_patch16_224")
    timm_kwargs = {"img_size": m.get("img_size", 224), "drop_path_rate": m.get("drop_path", 0.0),
                   **{key: m[key] for key in SIZE_KEYS if m.get(key)}}
    norm = d.get("norm", "auto")
    if norm != "auto" and norm not in NORMS:
        raise CheckpointError(f"{weights}: unknown data.norm {norm!r} in its config")
    mean, std = normalization(backbone) if norm == "auto" else NORMS[norm]
    return {
        "laps_version": None, "backbone": backbone, "temporal": m.get("temporal", "laps"),
        "num_frames": m.get("num_frames", 8), "num_classes": len(classes), "levels": m.get("levels"),
        "fold_div": m.get("fold_div", 4), "timm_kwargs": timm_kwargs, "classes": classes,
        "img_size": timm_kwargs["img_size"], "mean": list(mean), "std": list(std), "interpolation": "bilinear",
        "sampling_rate": d.get("sampling_rate", 8), "sampling": d.get("sampling", "dense"),
    }
