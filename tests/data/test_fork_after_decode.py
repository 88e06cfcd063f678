"""Processes forked after this one converted frames decode as well as any other.

Each test first converts frames in the test process, as a notebook, an evaluation or the demo's
dataset writer would: it decodes a video with the laps decoder, writes one with
:func:`~laps.data.encoding.write_video`, and converts a frame with PyAV's own
``to_ndarray(format="rgb24")`` (PyAV 18.1 keeps that conversion's threaded swscale context for the
thread). Then it forks workers that decode. Were a worker to use a conversion context made before
the fork, it would wait forever for swscale threads that exist only here: the timeouts turn that
wait into a failure.
"""

from __future__ import annotations

import os
import signal
import time

import av
import numpy as np
import pytest

import laps
from laps.data import build_loader, load_annotations, make_synthetic, set_epoch
from laps.data.check import check_dataset
from laps.data.dataset import VideoDataset
from laps.data.decoding import decode_frames
from laps.data.encoding import write_video
from laps.engine.trainer import train
from laps.models.loading import from_pretrained
from laps.serve.inference import evaluate_checkpoint
from tests.helpers import tiny_config

FRAMES = np.random.default_rng(0).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("fork") / "v.mp4"
    write_video(path, FRAMES, 8)
    return str(path)


def convert_here(video: str, tmp_path) -> None:
    """Convert frames in this process every way laps and a user do."""
    decode_frames(video, [0, 1])
    write_video(tmp_path / "written.mp4", FRAMES[:2], 8)
    with av.open(video) as container:
        next(container.decode(video=0)).to_ndarray(format="rgb24")


def _decode_in_child(video: str) -> int:
    """Fork a child that decodes ``video`` -> its pid; it exits 0 when the frames are right."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if decode_frames(video, [3, 4]).shape == (2, 32, 32, 3) else 1
        finally:
            os._exit(code)
    return pid


def _wait(pid: int, seconds: float) -> int | None:
    """The exit status of child ``pid``, or None (child killed) when it has not ended in ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.timeout(30)
@pytest.mark.parametrize("convert", ["decode", "write", "pyav"])
def test_a_child_forked_after_one_conversion_decodes(video, tmp_path, convert):
    # one conversion of each kind in the parent, alone, then a forked child decodes
    if convert == "decode":
        decode_frames(video, [0])
    elif convert == "write":
        write_video(tmp_path / "written.mp4", FRAMES[:2], 8)
    else:
        with av.open(video) as container:
            next(container.decode(video=0)).to_ndarray(format="rgb24")
    children = [_decode_in_child(video) for _ in range(2)]
    assert [_wait(pid, 10) for pid in children] == [0, 0], "a child forked after a conversion hung or failed"


@pytest.mark.timeout(60)
def test_a_loader_with_two_workers_runs_three_epochs(tiny_data, video, tmp_path):
    convert_here(video, tmp_path)
    records = load_annotations(tiny_data / "train.txt", tiny_data)
    dataset = VideoDataset(records, tiny_data, num_frames=4, sampling_rate=2, train=True, img_size=32)
    loader = build_loader(dataset, 4, train=True, num_workers=2)
    for epoch in range(3):
        set_epoch(loader, epoch)
        batches = [clips.shape for clips, _ in loader]
        assert batches == [(4, 4, 3, 32, 32)] * (len(records) // 4)
        convert_here(video, tmp_path)  # an evaluation in this process between epochs


@pytest.mark.timeout(60)
def test_check_dataset_with_two_processes(tiny_data, video, tmp_path):
    convert_here(video, tmp_path)
    records = load_annotations(tiny_data / "train.txt", tiny_data)
    assert check_dataset(records, tiny_data, workers=2) == []


@pytest.mark.timeout(60)
def test_features_with_workers_after_a_first_call_in_this_process(video, tmp_path):
    # the Python example of docs/features.md: a first call decodes here, the second in workers
    model = laps.create_model("vit_tiny_patch16_224", num_classes=3, num_frames=4, img_size=32, patch_size=8,
                              depth=1)
    convert_here(video, tmp_path)
    paths = [video, video, video]
    first = dict(laps.extract_features(model, paths[:1], window=0.5))
    second = list(laps.extract_features(model, paths, window=0.5, num_workers=2, batch_size=2))
    assert [path for path, _ in second] == paths
    np.testing.assert_allclose(second[0][1], first[video], atol=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_evaluate_in_this_process_then_train_the_next_epoch_with_workers(tmp_path):
    # the demo's order: write the dataset here, train, evaluate here, then train on with workers
    data = make_synthetic(tmp_path / "data", videos_per_class=2, seed=0, num_frames=8, size=32)
    run = tmp_path / "run"
    train(tiny_config(data, run, **{"optim.epochs": 1, "optim.batch_size": 2}))
    evaluate_checkpoint(from_pretrained(run), data / "val.txt", data, tmp_path / "eval", progress=False)
    summary = train(tiny_config(data, run, **{"optim.epochs": 2, "optim.batch_size": 2, "data.num_workers": 2}),
                    resume=True)
    assert summary["epochs"] == 2 and summary["data_workers"] == 2
