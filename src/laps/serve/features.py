"""Video features for whole datasets: :func:`extract_features` (Python) and :func:`write_features`
(``laps features``).

Clip mode (the default): a video's feature ``(D,)`` is ``model.forward_features`` averaged over the
test views ``views`` (clips x crops), the views ``laps predict --views`` classifies, so
``model.head(feature)`` is the mean of predict's per-view logits. Window mode (``window`` and
``stride`` in seconds): ``(n, D)``, row ``k`` the features of the window ``[k * stride, k * stride +
window)``, the windows ``laps predict --timeline`` scores (:func:`laps.serve.timeline.sliding_windows`).

Batches hold the clips of several videos: DataLoader workers decode the videos (worker ``w`` of
``W`` takes every W-th) and yield one item per clip (a view or a window) tagged with its video;
the loader collates them across videos, and the features are regrouped per video in the main
process. Videos come out in input order; a long video in window mode is never held whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm import tqdm

from laps.atomic import atomic_path
from laps.data.annotations import VideoRecord
from laps.data.dataset import resolve_num_workers
from laps.data.forked import worker_context
from laps.data.transforms import Normalize
from laps.errors import ConfigError, LapsError, VideoDecodeError
from laps.infer.predict import autocast
from laps.models import VideoClassifier
from laps.models.feed import resolve_feed
from laps.serve.feature_folder import folder_settings, writing
from laps.serve.feature_index import append_record, is_done, read_index, record, replace_record
from laps.serve.feature_inputs import FeatureInput, launch_share, npy_name, share
from laps.serve.inference import clip_dataset
from laps.serve.timeline import open_stream, stream_windows

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16")

#: a loader item: (video position, last clip of the video, error or None, clip uint8 (T, C, H, W) or None)
Item = tuple[int, bool, str | None, torch.Tensor | None]


class FeatureClips(IterableDataset):
    """The clips of ``inputs`` as ``model`` is fed (:func:`~laps.models.feed.resolve_feed`): per
    video its test ``views`` (clip mode) or its windows (window mode, ``window`` set), as
    :data:`Item` tuples; a video that cannot be read gives one item with the reason."""

    def __init__(self, model: VideoClassifier, inputs: list[FeatureInput], views: str = "1x3",
                 window: float | None = None, stride: float | None = None) -> None:
        self.inputs, self.window, self.stride = inputs, window, stride
        self.feed = resolve_feed(model)
        records = [VideoRecord(os.path.abspath(entry.video), 0, entry.start, entry.end) for entry in inputs]
        self.dataset = clip_dataset(model, records, ".", views, max_retries=0) if window is None and inputs else None

    def _clips(self, index: int) -> Iterator[torch.Tensor]:
        """The clips ``(T, C, H, W)`` of video ``index``: its views, or its windows in order."""
        if self.dataset is not None:
            yield from self.dataset.test_views(index)
            return
        with open_stream(self.inputs[index].video) as container:
            for _, clip in stream_windows(container, num_frames=self.feed.num_frames, img_size=self.feed.input_size,
                                          window=self.window, stride=self.stride, interpolation=self.feed.interpolation):
                yield clip

    def __iter__(self) -> Iterator[Item]:
        info = get_worker_info()
        first, step = (info.id, info.num_workers) if info is not None else (0, 1)
        for index in range(first, len(self.inputs), step):
            held = None
            try:
                for clip in self._clips(index):
                    if held is not None:
                        yield index, False, None, held
                    held = clip
                if held is None:
                    raise VideoDecodeError(f"{self.inputs[index].video}: no frame could be decoded")
            except (LapsError, OSError) as err:
                yield index, True, str(err), None
                continue
            yield index, True, None, held


def _collate(items: list[Item]) -> tuple[list[tuple[int, bool, str | None]], torch.Tensor | None]:
    """Items -> their (video, last, error) tags and the stacked clips ``(B, T, C, H, W)`` (None: only errors)."""
    clips = [clip for *_, clip in items if clip is not None]
    return [(video, last, error) for video, last, error, _ in items], torch.stack(clips) if clips else None


def feature_loader(model: VideoClassifier, inputs: list[FeatureInput], *, views: str = "1x3",
                   window: float | None = None, stride: float | None = None, batch_size: int = 8,
                   num_workers: int | str = 0) -> DataLoader:
    """The loader of :func:`iter_features`: batches of ``(tags, clips)``, the ``(video, last, error)``
    of each item and its clips uint8 ``(B, T, C, H, W)`` (``None`` when the batch holds only errors);
    memory is pinned when CUDA is available."""
    workers = resolve_num_workers(num_workers, batch_size)
    return DataLoader(FeatureClips(model, inputs, views, window, stride), batch_size=batch_size, num_workers=workers,
                      collate_fn=_collate, multiprocessing_context=worker_context(workers),
                      pin_memory=torch.cuda.is_available())


def check_window(window: float | None, stride: float | None) -> float | None:
    """The stride of window mode (``window`` when not given); a :class:`ConfigError` for a window or
    stride that is not > 0, or a stride without a window."""
    if window is None:
        if stride is not None:
            raise ConfigError(f"--stride {stride:g} without --window: the stride is of window mode; give --window "
                              "too, or leave --stride out for clip mode")
        return None
    stride = window if stride is None else stride
    if window <= 0 or stride <= 0:
        raise ConfigError(f"window mode needs --window and --stride > 0 seconds, got {window:g} and {stride:g}")
    return stride


def iter_features(model: VideoClassifier, inputs: list[FeatureInput], *, views: str = "1x3",
                  window: float | None = None, stride: float | None = None, batch_size: int = 8,
                  num_workers: int | str = 0, amp: str = "none") -> Iterator[tuple[int, np.ndarray | str]]:
    """``(position in inputs, float32 features or the reason the video failed)`` for every input, in
    order: ``(D,)`` per video in clip mode, ``(n, D)`` in window mode (see the module's docstring;
    ``stride`` defaults to ``window``)."""
    stride = check_window(window, stride)
    if not inputs:
        return
    loader = feature_loader(model, inputs, views=views, window=window, stride=stride, batch_size=batch_size,
                            num_workers=num_workers)
    normalize, device = Normalize(resolve_feed(model).norm), next(model.parameters()).device
    model.eval()
    rows: dict[int, list[torch.Tensor]] = {}
    finished: dict[int, np.ndarray | str] = {}
    next_out = 0
    for tags, clips in loader:
        if clips is not None:
            with torch.no_grad(), autocast(device, amp):
                features = model.forward_features(normalize(clips.to(device, non_blocking=True))).float().cpu()
        row = 0
        for video, last, error in tags:
            if error is not None:
                rows.pop(video, None)
                finished[video] = error
                continue
            rows.setdefault(video, []).append(features[row])
            row += 1
            if last:
                stacked = torch.stack(rows.pop(video))
                finished[video] = (stacked.mean(0) if window is None else stacked).numpy()
        while next_out in finished:
            yield next_out, finished.pop(next_out)
            next_out += 1


def extract_features(model: VideoClassifier, videos: Iterable[str | os.PathLike], *, views: str = "1x3",
                     window: float | None = None, stride: float | None = None, batch_size: int = 8,
                     num_workers: int | str = 0, amp: str = "none",
                     on_error: str = "raise") -> Iterator[tuple[str, np.ndarray]]:
    """``(video, float32 features)`` for each of ``videos`` (paths of video files), in order, without
    writing files: ``(D,)`` averaged over the test ``views`` (``"1x3"``: 1 clip x 3 crops, as
    ``laps predict``), or with ``window`` and ``stride`` (seconds; ``stride`` defaults to ``window``)
    ``(n, D)``, a row per window starting at ``0, stride, 2 * stride, ...``. A video that cannot be
    read raises its :class:`~laps.errors.VideoDecodeError` (``on_error="raise"``) or is logged and
    left out (``"skip"``). ``num_workers`` decoding processes (0: in this one; ``"auto"``: the cores)."""
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    paths = [str(video) for video in videos]
    inputs = [FeatureInput(path, npy_name(Path(path).name)) for path in paths]
    for position, result in iter_features(model, inputs, views=views, window=window, stride=stride,
                                          batch_size=batch_size, num_workers=num_workers, amp=amp):
        if isinstance(result, str):
            if on_error == "raise":
                raise VideoDecodeError(result)
            logger.warning("skipping broken video %s", result)
            continue
        yield paths[position], result


def write_features(model: VideoClassifier, inputs: list[FeatureInput], output: str | os.PathLike, *,
                   views: str = "1x3", window: float | None = None, stride: float | None = None,
                   dtype: str = "float32", batch_size: int = 8, num_workers: int | str = "auto", amp: str = "none",
                   shard: tuple[int, int] = (0, 1), retry_failed: bool = False, overwrite: bool = False,
                   progress: bool = True) -> dict[str, int]:
    """Extract this process's share of ``inputs`` (:func:`laps.serve.feature_inputs.share` of
    ``shard`` and the ``torchrun`` rank) into ``output``: one ``.npy`` per video (``dtype``), written
    atomically, and its record in ``output/index.jsonl`` (:mod:`laps.serve.feature_index`). The
    folder is held for the run (:func:`laps.serve.feature_folder.writing`): refused when it holds
    features of other settings (unless ``overwrite``) or another live run holds some of the same
    videos. Videos the index has as done (ok with their file, or failed unless ``retry_failed``)
    are skipped without a read or a write. Returns this process's counts ``{"videos", "skipped"
    (ok before), "failed_before" (skipped), "ok", "failed"}``."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    stride = check_window(window, stride)
    output = Path(output)
    rank, world = launch_share()
    settings = folder_settings(model, views=views, window=window, stride=stride, dtype=dtype)
    with writing(output, settings, [entry.video for entry in inputs], (shard[0] + shard[1] * rank, shard[1] * world),
                 overwrite):
        return _extract(model, share(inputs, shard, rank, world), output, desc=_describe(shard, rank, world),
                        views=views, window=window, stride=stride, dtype=dtype, batch_size=batch_size,
                        num_workers=num_workers, amp=amp, retry_failed=retry_failed, progress=progress)


def _describe(shard: tuple[int, int], rank: int, world: int) -> str:
    return "features" if world == 1 and shard == (0, 1) else f"features {shard[0]}/{shard[1]} rank {rank}"


def _extract(model: VideoClassifier, mine: list[FeatureInput], output: Path, *, desc: str, dtype: str,
             retry_failed: bool, progress: bool, **options) -> dict[str, int]:
    """:func:`write_features` of the videos ``mine`` into a folder held for it."""
    known = read_index(output)
    todo = [entry for entry in mine if not is_done(known.get(entry.video), output, retry_failed)]
    left = {entry.video for entry in todo}
    failed_before = sum(known[entry.video]["status"] == "failed" for entry in mine if entry.video not in left)
    counts = {"videos": len(mine), "skipped": len(mine) - len(todo) - failed_before, "failed_before": failed_before,
              "ok": 0, "failed": 0}
    with tqdm(total=len(todo), unit="video", desc=desc, disable=not progress, dynamic_ncols=True) as bar:
        for position, result in iter_features(model, todo, **options):
            entry = todo[position]
            if isinstance(result, str):
                done = record(entry.video, error=result)
                logger.warning("failed: %s", result)
            else:
                array = result.astype(dtype)
                with atomic_path(output / entry.name) as tmp:
                    np.save(tmp, array)
                done = record(entry.video, entry.name, array.shape)
            (replace_record if entry.video in known else append_record)(output, done)
            counts[done["status"]] += 1
            bar.update()
    return counts
