"""Checkpoints of a run directory: the model (a ``save_pretrained`` folder) and the training state.

A run directory is a folder that ``laps.from_pretrained`` and every command load as a model, plus
what only resuming needs:

- ``config.json`` + ``model.safetensors``: the model contract of :mod:`laps.models.sharing`, with
  the best weights so far (by validation top-1, else by training loss);
- ``last.safetensors``: the last epoch's weights, the same format;
- ``state.pt`` and ``state.prev.pt``: the last two training states (model, optimizer, scheduler,
  scaler, EMA, counters); ``config.yaml``: the whole training config.

Every write goes to a temporary file in the same folder and is renamed into place, so a
killed process never leaves a half-written checkpoint under the real name. Every file carries
the checksum of its content (:mod:`laps.integrity`), checked whenever it is read: a truncated,
zero-length or bit-flipped file is refused with an error that names it. :func:`load_resume_state`
falls back to ``state.prev.pt``, with a warning, when ``state.pt`` is damaged.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from laps.atomic import atomic_path
from laps.errors import CheckpointError
from laps.integrity import BYTES_KEY, DIGEST_KEY, content_digest, damaged, safe_torch_load, verify
from laps.models import VideoClassifier, sharing
from laps.models.feed import Feed
from laps.models.video_config import VideoConfig

logger = logging.getLogger(__name__)

BEST, LAST, STATE, PREVIOUS_STATE = sharing.WEIGHTS_NAME, "last.safetensors", "state.pt", "state.prev.pt"
MODEL_CONFIG, CONFIG = sharing.CONFIG_NAME, "config.yaml"


def model_config(model: VideoClassifier, feed: Feed, classes: list[str]) -> VideoConfig:
    """The ``config.json`` of a model trained on clips of ``feed`` (the run's
    :func:`~laps.engine.builders.config_feed`): its classes, and the normalisation, interpolation and
    frame sampling it was trained with. A run builds it once; writing a checkpoint looks nothing up."""
    return sharing.model_config(model, classes, mean=feed.mean, std=feed.std, interpolation=feed.interpolation,
                                sampling_rate=feed.sampling_rate, sampling=feed.sampling)


def write_model_config(run_dir: str | Path, video_cfg: VideoConfig) -> None:
    """Write the run's ``config.json`` (a :func:`model_config`)."""
    sharing.write_config(run_dir, video_cfg)


def save_weights(model: VideoClassifier, path: str | Path, video_cfg: VideoConfig,
                 state: dict[str, torch.Tensor] | None = None) -> None:
    """Write the weights as safetensors in timm's image-model format (a timm image model loads them
    as they are), with the run's ``config.json`` (``video_cfg``, a :func:`model_config`) in the
    metadata: a lone weights file is a model. ``state``: the model's full ``state_dict()`` to write
    instead of its own tensors (those of a sharded model are shards)."""
    backbone = None if state is None else {k.removeprefix("backbone."): v for k, v in state.items()
                                           if k.startswith("backbone.")}
    sharing.save_weights(model, path, video_cfg, backbone)


def save_epoch_weights(model: VideoClassifier, run_dir: Path, video_cfg: VideoConfig,
                       state: dict[str, torch.Tensor] | None, improved: bool) -> None:
    """An epoch's weights: written once as ``last.safetensors`` (:func:`save_weights`) and, when the
    epoch ``improved`` on the best, copied byte for byte to the best weights (``model.safetensors``)."""
    save_weights(model, run_dir / LAST, video_cfg, state)
    if improved:
        with atomic_path(run_dir / BEST) as tmp:
            shutil.copyfile(run_dir / LAST, tmp)


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
