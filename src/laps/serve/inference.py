"""Evaluate and predict with a trained model (``laps.from_pretrained``), fed as its ``config.json`` says.

Every command loads its model with ``laps.from_pretrained`` (a run directory, a ``save_pretrained``
folder, a weights file or a Hub id); the clip length, frame sampling, crop size, normalisation,
resize interpolation and class names all come from the model's config (``model.video_cfg``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from laps.data import VideoDataset, VideoRecord, load_annotations
from laps.data.dataset import resolve_num_workers
from laps.data.decoding import BrokenVideoError
from laps.data.forked import worker_context
from laps.data.transforms import Normalize
from laps.errors import LapsError
from laps.infer.device import DEFAULT_DEVICE
from laps.infer.evaluate import evaluate, write_eval_outputs
from laps.infer.predict import predict_views
from laps.models import VideoClassifier
from laps.models.feed import resolve_feed
from laps.serve.timeline import Timeline, slide


def load_model(checkpoint: str | Path, device: str = DEFAULT_DEVICE) -> VideoClassifier:
    """The model of any ``--checkpoint`` form (:func:`laps.from_pretrained`), in eval mode on ``device``."""
    from laps.infer.device import resolve_device
    from laps.models.loading import from_pretrained

    return from_pretrained(checkpoint).to(resolve_device(device))


def clip_dataset(model: VideoClassifier, records: list[VideoRecord], root: str | Path, views: str,
                 max_retries: int = 10) -> VideoDataset:
    """Test-time clips of ``records`` as ``model`` is fed (:func:`~laps.models.feed.resolve_feed`)."""
    feed = resolve_feed(model)
    return VideoDataset(records, str(root), feed.num_frames, feed.sampling_rate, train=False, img_size=feed.input_size,
                        sampling=feed.sampling, views=views, norm=feed.norm, interpolation=feed.interpolation,
                        max_retries=max_retries)


def evaluate_checkpoint(model: VideoClassifier, list_path: str | Path, root: str | Path, out_dir: str | Path,
                        views: str = "1x1", fmt: str = "auto", batch_size: int = 8, num_workers: int | str = 0,
                        amp: str = "none", progress: bool = True) -> dict[str, Any]:
    """Multi-view evaluation of ``model`` on an annotation file; writes eval.json, the confusion
    matrix and predictions into ``out_dir`` and returns eval.json's content."""
    classes = model.video_cfg.class_names
    records = load_annotations(list_path, root, fmt, classes=classes, subset="test")
    dataset = clip_dataset(model, records, root, views)
    workers = resolve_num_workers(num_workers, batch_size)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, multiprocessing_context=worker_context(workers))
    result = evaluate(model, loader, len(classes), amp, progress)
    return write_eval_outputs(result, out_dir, classes, views, [r.path for r in records])


def model_timeline(model: VideoClassifier, container, window: float, stride: float, batch_size: int = 8,
                   progress: bool = True) -> Timeline:
    """:func:`~laps.serve.timeline.slide` ``model`` over the video of an open PyAV ``container``,
    its windows resized, cropped and normalised as the model is fed."""
    feed = resolve_feed(model)
    normalize = Normalize(feed.norm)
    device = next(model.parameters()).device
    return slide(model, container, model.video_cfg.class_names, num_frames=feed.num_frames, img_size=feed.input_size,
                 interpolation=feed.interpolation, normalize=lambda clips: normalize(clips.to(device)),
                 window=window, stride=stride, batch_size=batch_size, progress=progress)


def format_prediction(item: dict[str, Any], top_k: int | None = None) -> str:
    """One line ``path: label p%, label p%`` (or ``path: ERROR reason``) of :func:`predict_files`."""
    if "error" in item:
        return f"{item['path']}: ERROR {item['error']}"
    return f"{item['path']}: " + ", ".join(f"{t['label']} {100 * t['prob']:.1f}%" for t in item["top"][:top_k])


def iter_predictions(model: VideoClassifier, paths: list[str], views: str = "1x3", top_k: int = 5,
                     amp: str = "none") -> Iterator[dict[str, Any]]:
    """Classify ``paths`` one at a time: yields ``{"path", "top": [{"label", "prob"}, ...]}`` per
    video, or ``{"path", "error"}`` for one that cannot be read, the error saying what is wrong with
    the file (``file not found``, ``a still image, not a video``, ``truncated: ...``). Nothing
    accumulates: memory stays flat however many videos there are."""
    classes = model.video_cfg.class_names
    dataset = clip_dataset(model, [VideoRecord(os.path.abspath(p), 0) for p in paths], ".", views)
    for index, path in enumerate(paths):
        try:
            views_tensor = dataset.test_views(index)
        except LapsError as exc:
            yield {"path": path, "error": exc.reason if isinstance(exc, BrokenVideoError) else str(exc)}
            continue
        probs = predict_views(model, views_tensor.unsqueeze(0), dataset.normalize, amp)[0]
        top = probs.topk(min(top_k, probs.numel()))
        yield {"path": path, "top": [{"label": classes[i], "prob": float(p)}
                                     for p, i in zip(top.values.tolist(), top.indices.tolist())]}


def predict_files(model: VideoClassifier, paths: list[str], views: str = "1x3", top_k: int = 5,
                  amp: str = "none") -> list[dict[str, Any]]:
    """:func:`iter_predictions` as a list."""
    return list(iter_predictions(model, paths, views, top_k, amp))
