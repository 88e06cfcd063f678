"""``VideoDataset`` (records -> clips, tolerant of broken files) and ``build_loader``.

Broken files: a video that fails to open or decode is logged once (path and reason),
marked in a shared-memory flag array, and replaced by another random video (up to
``max_retries`` draws, then :class:`~laps.errors.DataError`). The replacement is drawn from the
item's ``(seed, epoch, index)`` and the attempt alone: the same whichever worker process found the
file broken first, and after a resume. The flags live in shared memory, so marks made inside
DataLoader worker processes are seen by the main process: ``dataset.broken`` (count) and
``dataset.broken_files()`` after or during an epoch give the distinct broken files found so far
(per process group rank). Files already marked are skipped without another decode attempt.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Sequence
from contextlib import closing

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from laps.data.annotations import VideoRecord, resolve_path
from laps.data.cores import cores_per_process
from laps.data.decoding import BACKENDS, open_video
from laps.data.forked import worker_context
from laps.data.sampling import parse_views, sample_indices
from laps.data.transforms import Norm, Normalize, TestTransform, TrainTransform
from laps.data.workers import LoaderWorkers
from laps.errors import ConfigError, DataError, VideoDecodeError
from laps.models.feed import FALLBACK
from laps.samplings import check_sampling

logger = logging.getLogger(__name__)


class VideoDataset(Dataset):
    """Video records -> uint8 clips; :attr:`normalize` turns a batch of them into model input.

    Items: train ``(clip uint8 (T, C, H, W), label)``; test ``(views uint8 (V, T, C, H, W),
    label, index)`` with ``V = clips x crops`` ordered clip-major, and ``index`` the record
    actually decoded (another one when the requested file is broken). Call
    ``dataset.normalize(batch.to(device))`` for float32 input normalised by ``norm``, on the
    device (see :class:`~laps.data.transforms.Normalize`).

    Args:
        records: videos and labels; paths relative to ``root`` or absolute.
        num_frames, sampling_rate: frames per clip and their spacing (dense sampling only).
        train: random clip, scale jitter, crop and flip; else fixed test views.
        img_size: crop side. sampling: "dense" or "segment" (TSN).
        views: test views as (clips, crops) or "10x3"; ignored in training.
        scale_range: training short-side jitter range (pixels, >= img_size); default
            :func:`~laps.data.transforms.default_scale_range` of ``img_size``.
        flip: random horizontal flip in training (turn off for direction-sensitive classes).
        norm: a preset of :func:`~laps.models.feed.norm_presets` or (mean, std).
        max_retries: replacement draws for a broken file before giving up.
        backend: video decoder, see :data:`laps.data.decoding.BACKENDS`.
        randaugment: add RandAugment (same ops for every frame) in training.
        interpolation: resize interpolation (see :func:`~laps.data.transforms.interpolation_mode`);
            a model's is its :func:`~laps.models.feed.resolve_feed`'s.
        seed: training augmentation seed; with :meth:`set_epoch`, an item's random draws depend
            only on ``(seed, epoch, index)``.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        root: str | os.PathLike,
        num_frames: int = 8,
        sampling_rate: int = 8,
        *,
        train: bool,
        img_size: int = 224,
        sampling: str = "dense",
        views: str | Sequence[int] = (1, 1),
        scale_range: tuple[int, int] | None = None,
        flip: bool = True,
        norm: Norm = "imagenet",
        max_retries: int = 10,
        backend: str = "pyav",
        randaugment: bool = False,
        seed: int = 0,
        interpolation: str = FALLBACK.interpolation,
    ) -> None:
        if not records:
            raise DataError("the dataset has no videos; check the annotation file")
        check_sampling(sampling)
        if backend not in BACKENDS:
            raise ConfigError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.records = list(records)
        self.root = str(root)
        self.num_frames, self.sampling_rate, self.sampling = num_frames, sampling_rate, sampling
        self.train, self.backend, self.max_retries = train, backend, max_retries
        self.views = (1, 1) if train else parse_views(views)
        if train:
            self.transform = TrainTransform(img_size, scale_range, flip=flip, randaugment=randaugment,
                                            interpolation=interpolation)
        else:
            self.transform = TestTransform(img_size, self.views[1], interpolation=interpolation)
        self.normalize = Normalize(norm)
        self._broken = torch.zeros(len(self.records), dtype=torch.bool).share_memory_()
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.records)

    @property
    def broken(self) -> int:
        """Number of distinct broken files found so far (by any worker process)."""
        return int(self._broken.sum())

    def broken_files(self) -> list[str]:
        """Record paths of the broken files found so far."""
        return [self.records[i].path for i in self._broken.nonzero().flatten().tolist()]

    def broken_flags(self) -> torch.Tensor:
        """``(N,)`` bool: which records were found broken so far (a copy)."""
        return self._broken.clone()

    def mark_broken(self, index: int, reason: str | None = None) -> None:
        """Flag record ``index`` as broken: counted, and skipped from now on without a decode
        attempt. ``reason`` is logged, once per file."""
        if not self._broken[index]:
            self._broken[index] = True
            if reason is not None:
                logger.warning("skipping broken video %s", reason)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations :meth:`__getitem__` draws (training only)."""
        self.epoch = epoch

    def __getitem__(self, key: int | tuple[int, int]):
        # an item's randomness depends only on (seed, epoch, index): the same clips whatever the
        # number of workers or processes, and again after a resume. The loader's sampler sends the
        # epoch with every index (``(epoch, index)``), so workers that outlive an epoch follow it.
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        item_seed = [self.seed, epoch, index] if self.train else [index]
        rng = np.random.default_rng(item_seed)
        for attempt in range(1, self.max_retries + 2):
            if self._broken[index]:
                last_error = f"{self.records[index].path}: found broken before"
            else:
                try:
                    return self._load(index, rng)
                except VideoDecodeError as err:
                    self.mark_broken(index, str(err))
                    last_error = str(err)
            # the replacement and its draws come from the item and the attempt alone, not from what
            # the broken file drew before it failed: a file found broken by another worker process
            # (or before a resume) is replaced by the same clip as one found broken here
            rng = np.random.default_rng([*item_seed, attempt])
            index = int(rng.integers(len(self.records)))
        raise DataError(
            f"gave up after {self.max_retries + 1} unreadable video(s) in a row (last: {last_error}); "
            "list the broken files with 'laps data check LIST --root DIR'"
        )

    def test_views(self, index: int) -> torch.Tensor:
        """The test views uint8 ``(V, T, C, H, W)`` of record ``index`` itself: a broken file raises its
        :class:`~laps.errors.VideoDecodeError` (no replacement, no mark)."""
        if self.train:
            raise ConfigError("test_views needs a test-mode dataset (train=False)")
        return self._load(index, np.random.default_rng([index]))[0]

    def _indices(self, num_video_frames: int, rng: np.random.Generator, clip: int = 0) -> np.ndarray:
        return sample_indices(self.sampling, num_video_frames, self.num_frames, self.sampling_rate,
                              train=self.train, rng=rng, clip_index=clip, num_clips=self.views[0])

    def _load(self, index: int, rng: np.random.Generator):
        record = self.records[index]
        path = resolve_path(self.root, record.path)
        with closing(open_video(path, self.backend, record.start, record.end)) as video:
            total = video.info.num_frames
            if self.train:
                return self.transform(video.get(self._indices(total, rng)), rng), record.label
            clips = self.views[0]
            frames = video.get(np.concatenate([self._indices(total, rng, k) for k in range(clips)]))
        frames = frames.reshape(clips, self.num_frames, *frames.shape[1:])
        return torch.cat([self.transform(clip) for clip in frames]), record.label, index


def resolve_num_workers(num_workers: int | str, batch_size: int) -> int:
    """Loader processes for ``num_workers``: an integer as it is; ``"auto"``: the CPU cores this
    process may use, shared by the processes of this node (:func:`cores_per_process`), at most one
    per clip of the batch."""
    if num_workers == "auto":
        return max(1, min(batch_size, cores_per_process()))
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers must be 'auto' or an integer >= 0, got {num_workers!r}")
    return num_workers


class _EpochSampler(DistributedSampler):
    """A :class:`DistributedSampler` whose items are ``(epoch, index)``: the epoch that selects
    the augmentations travels with every index, to workers that persist across epochs. ``skip``
    leaves out the epoch's first items (a run resumed in the middle of an epoch)."""

    skip = 0

    def __iter__(self):
        return ((self.epoch, index) for index in itertools.islice(super().__iter__(), self.skip, None))


def build_loader(
    dataset: VideoDataset,
    batch_size: int,
    *,
    train: bool,
    num_workers: int | str = 0,
    num_replicas: int = 1,
    rank: int = 0,
    seed: int = 0,
    timeout: float = 0,
) -> DataLoader:
    """DataLoader over a :class:`VideoDataset`, sharded with a :class:`DistributedSampler`.

    Batches: train ``(clips (B, T, C, H, W), labels (B,))``; test ``(views (B, V, T, C, H, W),
    labels (B,), indices (B,))``. Training shuffles (seeded) and drops the last partial batch.
    ``num_replicas``/``rank`` shard the data over processes (1/0: everything). ``num_workers``:
    see :func:`resolve_num_workers`; the workers persist across epochs and keep batches
    prefetched. Call :func:`set_epoch` before every epoch: it reshuffles and selects the epoch's
    augmentations. Memory is pinned only when CUDA is available. With workers, ``timeout`` (seconds,
    0: none) is the longest wait for a batch before the loader raises, and the loader's
    ``worker_init_fn`` is a :class:`~laps.data.workers.LoaderWorkers`, which can print their stacks;
    they are forked through :data:`laps.data.forked.FORK` (they free nothing they inherit).
    """
    workers = resolve_num_workers(num_workers, batch_size)
    sampler = _EpochSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=train, seed=seed,
                            drop_last=train)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=train,
        timeout=timeout if workers else 0,
        worker_init_fn=LoaderWorkers(workers) if workers else None,
        multiprocessing_context=worker_context(workers),
    )


def set_epoch(loader: DataLoader, epoch: int, start_batch: int = 0) -> None:
    """Reshuffle a :func:`build_loader` loader and select the epoch's augmentations; with
    ``start_batch``, the loader leaves out the epoch's first batches (without loading them) and
    yields exactly the batches an uninterrupted epoch would yield from there on."""
    loader.sampler.set_epoch(epoch)
    loader.sampler.skip = start_batch * loader.batch_size
    loader.dataset.set_epoch(epoch)
