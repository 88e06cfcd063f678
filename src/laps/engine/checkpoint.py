"""Checkpoints: safetensors weights (self-describing) and a weights_only-loadable training state.

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed process never leaves a half-written checkpoint under the real name. Every file carries
the checksum of its content (:mod:`laps.integrity`), checked whenever it is read: a truncated,
zero-length or bit-flipped file is refused with an error that names it. A run directory keeps
the last two training states (``state.pt`` and ``state.prev.pt``); :func:`load_resume_state`
falls back to the older one, with a warning, when the newer one is damaged.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from laps.atomic import atomic_path
from laps.engine.config import Config, config_from_dict
from laps.errors import CheckpointError
from laps.integrity import (BYTES_KEY, DIGEST_KEY, content_digest, damaged, load_safetensors, safe_torch_load,
                            save_safetensors, verify)
from laps.models import VideoClassifier

logger = logging.getLogger(__name__)

BEST, LAST, STATE, PREVIOUS_STATE = "best.safetensors", "last.safetensors", "state.pt", "state.prev.pt"
CONFIG, CLASSES = "config.yaml", "classes.json"


def save_weights(model: VideoClassifier, path: str | Path, config: Config | None = None,
                 classes: list[str] | None = None) -> None:
    """Write the weights as safetensors in timm's image-model format (``model.backbone.state_dict()``:
    a timm image model loads them as they are); the run config and class names go into the
    file's metadata so a lone weights file can be loaded and used for prediction."""
    metadata = {}
    if config is not None:
        metadata["laps_config"] = json.dumps(config.to_dict())
    if classes is not None:
        metadata["laps_classes"] = json.dumps(classes)
    save_safetensors(model.backbone.state_dict(), path, metadata)


def save_state(state: dict[str, Any], path: str | Path, previous: str | Path | None = None) -> None:
    """Atomically ``torch.save`` a training state made of tensors and plain Python values, with its
    checksum. With ``previous``, the state that was at ``path`` is kept there: a process killed
    between the two renames leaves ``previous`` alone, which :func:`load_resume_state` falls back to."""
    path = Path(path)
    digest, total = content_digest(state)
    with atomic_path(path) as tmp:
        torch.save({**state, DIGEST_KEY: digest, BYTES_KEY: total}, tmp)
        if previous is not None and path.is_file():
            os.replace(path, previous)


def load_state(path: str | Path) -> dict[str, Any]:
    """A training state written by :func:`save_state`, its checksum checked; refuses pickles
    that would run code (:class:`CheckpointError` naming the file)."""
    state = safe_torch_load(path, "training state")
    if not isinstance(state, dict):
        raise damaged(path, "training state", f"it holds a {type(state).__name__}, not a training state")
    digest, total = state.pop(DIGEST_KEY, None), state.pop(BYTES_KEY, None)
    verify(path, "training state", state, digest, total)
    return state


def load_resume_state(run_dir: str | Path) -> dict[str, Any]:
    """The newest good training state of a run directory: ``state.pt``, else (with a warning
    naming what is wrong with it) ``state.prev.pt``; :class:`CheckpointError` if neither loads."""
    run_dir = Path(run_dir)
    newest, older = run_dir / STATE, run_dir / PREVIOUS_STATE
    if not newest.is_file() and not older.is_file():
        raise CheckpointError(f"--resume: {newest} does not exist; start without --resume")
    try:
        return load_state(newest)
    except CheckpointError as err:
        if not older.is_file():
            raise
        try:
            state = load_state(older)
        except CheckpointError as older_err:
            raise CheckpointError(f"no training state of {run_dir} can be resumed: {err}; and {older_err}") from None
        logger.warning("%s; resuming from the previous training state %s instead (epoch %d)",
                       err, older, state["epoch"] + 1)
        return state


def resolve_weights(path: str | Path) -> Path:
    """A run directory means its best weights (else last); a file means itself."""
    path = Path(path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"run directory {path} holds no {BEST} or {LAST}; did training finish an epoch?")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass a run directory or a .safetensors file")
    return path


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], Config | None, list[str] | None]:
    """Tensors, run config and class names of a weights file (or run directory)."""
    path = resolve_weights(path)
    tensors, metadata = load_safetensors(path)
    config = config_from_dict(json.loads(metadata["laps_config"])) if "laps_config" in metadata else None
    classes = json.loads(metadata["laps_classes"]) if "laps_classes" in metadata else None
    return tensors, config, classes


