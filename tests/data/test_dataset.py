import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from laps.data.annotations import VideoRecord, load_annotations
from laps.data.check import check_dataset
from laps.data.dataset import VideoDataset, build_loader, resolve_num_workers
from laps.data.sampling import dense_indices
from laps.errors import ConfigError, DataError
from tests.helpers import frame_ids

RAW = ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255))  # "normalisation" that keeps pixel values


def clip_ids(clip: torch.Tensor) -> list[int]:
    """(T, C, H, W) float pixel values of index-coloured frames -> frame indices."""
    return frame_ids(clip.permute(0, 2, 3, 1).numpy())


def test_train_item_is_a_dense_clip(index_video):
    dataset = VideoDataset([VideoRecord(index_video.name, 3)], index_video.parent, 4, 3, train=True, img_size=32,
                           scale_range=(48, 64), norm=RAW)
    clip, label = dataset[0]
    assert clip.shape == (4, 3, 32, 32) and clip.dtype == torch.uint8 and label == 3
    ids = clip_ids(clip)
    assert np.diff(ids).tolist() == [3, 3, 3] and 0 <= ids[0] <= 40 - 10


def test_test_item_holds_every_view(index_video):
    dataset = VideoDataset([VideoRecord(str(index_video), 1)], "/elsewhere", 4, 2, train=False, img_size=32,
                           views="2x3", norm=RAW)
    views, label, index = dataset[0]
    assert views.shape == (6, 4, 3, 32, 32) and (label, index) == (1, 0)
    for clip in range(2):
        expected = dense_indices(40, 4, 2, train=False, clip_index=clip, num_clips=2).tolist()
        for crop in range(3):
            assert clip_ids(views[3 * clip + crop]) == expected


def test_segment_sampling(index_video):
    dataset = VideoDataset([VideoRecord(index_video.name, 0)], index_video.parent, 4, 1, train=False, img_size=32,
                           sampling="segment", norm=RAW)
    views, _, _ = dataset[0]
    assert clip_ids(views[0]) == [5, 15, 25, 35]


def broken_epoch_records(index_video, broken_videos):
    """24 good records (label 0) and the 8 broken kinds (label 1): 25% broken."""
    return [VideoRecord(str(index_video), 0)] * 24 + [VideoRecord(str(p), 1) for p in broken_videos.values()]


@pytest.mark.parametrize("num_workers", [0, pytest.param(1, marks=pytest.mark.slow)])  # 1: a worker process
def test_epoch_skips_and_counts_broken_files(index_video, broken_videos, num_workers, caplog):
    records = broken_epoch_records(index_video, broken_videos)
    dataset = VideoDataset(records, "/", 4, 2, train=True, img_size=32, scale_range=(32, 40))
    loader = build_loader(dataset, 5, train=True, num_workers=num_workers, seed=1)
    with caplog.at_level(logging.WARNING, logger="laps.data.dataset"):
        for _ in range(2):  # two epochs: broken files are logged once
            batches = [(clips.shape, labels) for clips, labels in loader]
            assert len(batches) == 6
            assert all(shape == (5, 4, 3, 32, 32) for shape, _ in batches)
            assert all((labels == 0).all() for _, labels in batches)  # every broken video was replaced
    assert dataset.broken == len(broken_videos) == 8
    assert sorted(dataset.broken_files()) == sorted(str(p) for p in broken_videos.values())
    if num_workers == 0:
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 8
        assert any(str(broken_videos["truncated"]) in w and "truncated" in w for w in warnings)
    del loader


def test_gives_up_after_bounded_retries(broken_videos):
    dataset = VideoDataset([VideoRecord(str(p), 0) for p in broken_videos.values()], "/", 4, 2, train=True,
                           img_size=32, scale_range=(32, 40), max_retries=3)
    with pytest.raises(DataError, match="after 4 unreadable video.*laps data check"):
        dataset[0]


def test_test_loader_batches(index_video):
    dataset = VideoDataset([VideoRecord(str(index_video), i) for i in range(3)], "/", 4, 2, train=False, img_size=32,
                           views=(2, 1))
    views, labels, indices = next(iter(build_loader(dataset, 3, train=False, num_workers=0)))
    assert views.shape == (3, 2, 4, 3, 32, 32)
    assert labels.tolist() == [0, 1, 2] and indices.tolist() == [0, 1, 2]


@pytest.mark.slow  # a worker process
def test_loader_shards_over_replicas_and_augmentation_depends_only_on_seed_epoch_index(tmp_path):
    from laps.data import make_synthetic
    from laps.data.dataset import set_epoch

    data = make_synthetic(tmp_path / "syn", videos_per_class=2, seed=0, num_frames=8, size=32)
    records = load_annotations(data / "train.txt", data)

    def dataset():  # RandAugment too: its ops follow (seed, epoch, index), not the process's torch RNG
        return VideoDataset(records, data, 4, 2, train=True, img_size=32, scale_range=(32, 48), seed=3,
                            randaugment=True)

    whole = build_loader(dataset(), 4, train=True, seed=5)
    shards = [build_loader(dataset(), 2, train=True, seed=5, num_replicas=2, rank=r, num_workers=r) for r in (0, 1)]
    for epoch in (0, 1):
        for loader in (whole, *shards):
            set_epoch(loader, epoch)
        clips, labels = next(iter(whole))
        a, la = next(iter(shards[0]))
        b, lb = next(iter(shards[1]))
        assert isinstance(shards[0].sampler, DistributedSampler)
        # DistributedSampler interleaves: rank 0 takes positions 0, 2; rank 1 takes 1, 3
        torch.testing.assert_close(torch.stack([a[0], b[0], a[1], b[1]]), clips)
        assert torch.equal(torch.stack([la[0], lb[0], la[1], lb[1]]), labels)
    set_epoch(whole, 0)
    first = next(iter(whole))[0]
    set_epoch(whole, 1)
    assert not torch.equal(first, next(iter(whole))[0])  # another epoch, other clips


@pytest.mark.parametrize("workers", [1, 2])
def test_check_dataset_lists_every_broken_file(index_video, broken_videos, workers):
    records = broken_epoch_records(index_video, broken_videos)[20:]
    broken = dict(check_dataset(records, "/", workers=workers))
    assert sorted(broken) == sorted(str(p) for p in broken_videos.values())
    assert broken[str(broken_videos["empty"])] == "empty file (0 bytes)"


@pytest.mark.parametrize(
    "cores, local_processes, batch, expected",
    [(16, None, 64, 16), (16, "8", 64, 2), (16, None, 4, 4), (2, "4", 8, 1), (1, None, 8, 1)],
)
def test_auto_workers_share_the_cores_between_local_processes(monkeypatch, cores, local_processes, batch, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    if local_processes is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local_processes)
    assert resolve_num_workers("auto", batch) == expected
    assert resolve_num_workers(3, batch) == 3


@pytest.mark.parametrize("bad", ["many", -1, 2.5, True])
def test_bad_worker_counts_are_refused(bad):
    with pytest.raises(ConfigError, match="'auto' or an integer >= 0"):
        resolve_num_workers(bad, 4)


@pytest.mark.slow  # worker processes
def test_persistent_workers_follow_the_epoch(tmp_path):
    """Workers outlive the epoch; each index arrives with its epoch, so every batch of every
    epoch equals in-process loading, and the epochs differ."""
    from laps.data import make_synthetic
    from laps.data.dataset import set_epoch

    data = make_synthetic(tmp_path / "syn", videos_per_class=2, seed=0, num_frames=8, size=32)
    records = load_annotations(data / "train.txt", data)

    def loader(workers):
        dataset = VideoDataset(records, data, 4, 2, train=True, img_size=32, scale_range=(32, 48), seed=3)
        return build_loader(dataset, 4, train=True, seed=5, num_workers=workers)

    in_process, pooled = loader(0), loader(2)
    assert pooled.persistent_workers and pooled.num_workers == 2
    epochs = []
    for epoch in range(3):
        batches = []
        for source in (in_process, pooled):
            set_epoch(source, epoch)
            batches.append([clips for clips, _ in source])
        for a, b in zip(*batches):
            assert torch.equal(a, b)
        epochs.append(batches[0][0])
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])


def test_items_are_uint8_and_the_dataset_normalises_batches_with_its_norm(index_video):
    norm = ((0.2, 0.4, 0.6), (0.5, 0.25, 0.125))
    dataset = VideoDataset([VideoRecord(str(index_video), 0)], "/", 4, 2, train=True, img_size=32,
                           scale_range=(32, 40), norm=norm)
    clip, _ = dataset[0]
    assert clip.dtype == torch.uint8
    mean, std = (torch.tensor(v).view(-1, 1, 1) for v in norm)
    torch.testing.assert_close(dataset.normalize(clip[None])[0], (clip.float() / 255 - mean) / std, atol=1e-6, rtol=0)


def test_a_broken_video_is_replaced_alike_whether_or_not_it_was_found_broken_before(index_video, broken_videos):
    # a file that opens and fails while decoding has drawn its frame indices first; a file another
    # worker process (or the run before a resume) found broken is skipped without those draws
    records = [VideoRecord(str(index_video), 0)] * 8 + [VideoRecord(str(broken_videos["undecodable"]), 1)]

    def dataset():
        return VideoDataset(records, "/", 4, 2, train=True, img_size=32, scale_range=(32, 48), seed=5)

    for epoch in range(4):
        fresh, known = dataset(), dataset()
        known.mark_broken(8)
        (found_clip, found_label), (known_clip, known_label) = fresh[(epoch, 8)], known[(epoch, 8)]
        assert fresh.broken == 1 and found_label == known_label == 0
        assert torch.equal(found_clip, known_clip)
