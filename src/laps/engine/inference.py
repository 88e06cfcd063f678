"""Load a trained model from a run directory or weights file; predict and evaluate with it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import yaml
from torch.utils.data import DataLoader

from laps.data import VideoDataset, VideoRecord, load_annotations, load_classes
from laps.data.annotations import VIDEO_SUFFIXES
from laps.data.dataset import resolve_num_workers
from laps.engine import checkpoint as ckpt
from laps.engine.builders import build_dataset, build_model, resolve_device, resolve_norm
from laps.engine.config import Config, config_from_dict
from laps.engine.evaluate import evaluate, predict_views, write_eval_outputs
from laps.errors import CheckpointError, LapsError
from laps.models import VideoClassifier
from laps.models.video import load_weights_into


@dataclass
class TrainedModel:
    model: VideoClassifier
    config: Config
    classes: list[str]


def load_trained(checkpoint: str | Path, device: str = "auto") -> TrainedModel:
    """A run directory (its best weights, config.yaml, classes.json) or a laps weights file
    (config and classes from its metadata) -> an eval-mode model on ``device``."""
    weights = ckpt.resolve_weights(checkpoint)
    tensors, config, classes = ckpt.read_weights(weights)
    run_dir = weights.parent
    if config is None and (run_dir / ckpt.CONFIG).is_file():
        config = config_from_dict(yaml.safe_load((run_dir / ckpt.CONFIG).read_text()))
    if config is None:
        raise CheckpointError(f"{weights} carries no laps config and has no config.yaml beside it; was it written by laps train?")
    if classes is None:
        classes = load_classes(run_dir / ckpt.CLASSES) if (run_dir / ckpt.CLASSES).is_file() else None
    if classes is None:
        raise CheckpointError(f"{weights} carries no class names and has no classes.json beside it; was it written by laps train?")
    model = build_model(config, len(classes), pretrained=False)
    load_weights_into(model, tensors, weights)
    return TrainedModel(model.to(resolve_device(device)).eval(), config, classes)


def evaluate_checkpoint(trained: TrainedModel, list_path: str | Path, root: str | Path, out_dir: str | Path,
                        views: str = "1x1", fmt: str = "auto", batch_size: int = 8, num_workers: int | str = 0,
                        amp: str = "none", progress: bool = True) -> dict[str, Any]:
    """Multi-view evaluation of ``trained`` on an annotation file; writes eval.json, the confusion
    matrix and predictions into ``out_dir`` and returns eval.json's content."""
    records = load_annotations(list_path, root, fmt, classes=trained.classes, subset="test")
    dataset = build_dataset(trained.config, records, str(root), train=False, views=views)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=resolve_num_workers(num_workers, batch_size))
    result = evaluate(trained.model, loader, len(trained.classes), amp, progress)
    return write_eval_outputs(result, out_dir, trained.classes, views, [r.path for r in records])


def format_prediction(item: dict[str, Any], top_k: int | None = None) -> str:
    """One line ``path: label p%, label p%`` (or ``path: ERROR reason``) of :func:`predict_files`."""
    if "error" in item:
        return f"{item['path']}: ERROR {item['error']}"
    return f"{item['path']}: " + ", ".join(f"{t['label']} {100 * t['prob']:.1f}%" for t in item["top"][:top_k])


def expand_videos(inputs: list[str]) -> list[str]:
    """Files as given; folders expanded to the videos under them (sorted)."""
    paths = []
    for item in inputs:
        if os.path.isdir(item):
            paths.extend(sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES))
        else:
            paths.append(item)
    return paths


def iter_predictions(trained: TrainedModel, paths: list[str], views: str = "1x3", top_k: int = 5,
                     amp: str = "none") -> Iterator[dict[str, Any]]:
    """Classify ``paths`` one at a time: yields ``{"path", "top": [{"label", "prob"}, ...]}`` per
    video, or ``{"path", "error"}`` for one that cannot be read. Nothing accumulates: memory stays
    flat however many videos there are."""
    c = trained.config
    dataset = VideoDataset([VideoRecord(os.path.abspath(p), 0) for p in paths], ".", c.model.num_frames,
                           c.data.sampling_rate, train=False, img_size=c.model.img_size, sampling=c.data.sampling,
                           views=views, norm=resolve_norm(c), max_retries=0)
    for index, path in enumerate(paths):
        try:
            views_tensor, _, _ = dataset[index]
        except LapsError as exc:
            yield {"path": path, "error": str(exc)}
            continue
        probs = predict_views(trained.model, views_tensor.unsqueeze(0), dataset.normalize, amp)[0]
        top = probs.topk(min(top_k, probs.numel()))
        yield {"path": path, "top": [{"label": trained.classes[i], "prob": float(p)}
                                     for p, i in zip(top.values.tolist(), top.indices.tolist())]}


def predict_files(trained: TrainedModel, paths: list[str], views: str = "1x3", top_k: int = 5,
                  amp: str = "none") -> list[dict[str, Any]]:
    """:func:`iter_predictions` as a list."""
    return list(iter_predictions(trained, paths, views, top_k, amp))
