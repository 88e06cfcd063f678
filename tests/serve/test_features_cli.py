"""``laps features``: a .npy per video and one index, atomic and resumable; broken videos recorded;
shards and torchrun processes together write what one process writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch

import laps
from laps.cli import main
from laps.models import VideoClassifier
from tests.serve.conftest import VIDEOS


def _index(out):
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


def _stats(out):
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*")}


def test_one_npy_per_video_and_an_index_and_a_rerun_rewrites_nothing(feature_model_dir, feature_model, video_folder,
                                                                     tmp_path, monkeypatch):
    out = tmp_path / "feats"
    argv = ["features", "--checkpoint", str(feature_model_dir), "--output", str(out), "--workers", "0",
            "--views", "1x3", str(video_folder)]
    assert main(argv) == 0
    records = _index(out)
    assert [r["video"] for r in records] == [str(video_folder / name) for name in VIDEOS]
    assert [r["file"] for r in records] == ["a/x.npy", "b/x.npy", "c.npy"]  # same names, other folders: apart
    assert all(r["status"] == "ok" and r["error"] is None and r["shape"] == [192] for r in records)
    expected = dict(laps.extract_features(feature_model, [r["video"] for r in records], views="1x3"))
    for r in records:
        saved = np.load(out / r["file"])
        assert saved.dtype == np.float32
        np.testing.assert_allclose(saved, expected[r["video"]], atol=1e-5, rtol=0)
    assert not list(out.rglob(".*"))  # no temporary file, no lock file left behind
    before = _stats(out)

    def no_model(self, clips):
        raise AssertionError("the model ran on a rerun")

    monkeypatch.setattr(VideoClassifier, "forward_features", no_model)
    assert main(argv) == 0
    assert _stats(out) == before


def test_window_mode_writes_float16_rows_of_the_windows(feature_model_dir, feature_model, video_folder, tmp_path):
    out = tmp_path / "feats"
    assert main(["features", "--checkpoint", str(feature_model_dir), "--output", str(out), "--workers", "0",
                 "--window", "2", "--dtype", "float16", "--batch-size", "3", str(video_folder)]) == 0
    videos = [str(video_folder / name) for name in VIDEOS]
    expected = dict(laps.extract_features(feature_model, videos, window=2.0, stride=2.0))  # stride: the window
    for r in _index(out):
        saved = np.load(out / r["file"])
        assert saved.dtype == np.float16 and r["shape"] == list(saved.shape) == list(expected[r["video"]].shape)
        np.testing.assert_allclose(saved.astype(np.float32), expected[r["video"]], atol=2e-3, rtol=2e-3)
    assert [r["shape"][0] for r in _index(out)] == [1, 1, 2]


def test_a_broken_video_is_recorded_and_the_others_go_on(feature_model_dir, video_folder, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(video_folder, videos)
    (videos / "broken.mp4").write_bytes(b"")
    out = tmp_path / "feats"
    argv = ["features", "--checkpoint", str(feature_model_dir), "--output", str(out), "--workers", "0",
            "--views", "1x1", str(videos)]
    assert main(argv) == 1
    records = {r["video"]: r for r in _index(out)}
    assert len(records) == 4
    broken = records.pop(str(videos / "broken.mp4"))
    assert broken["status"] == "failed" and broken["file"] is None and "empty file" in broken["error"]
    assert all(r["status"] == "ok" and (out / r["file"]).is_file() for r in records.values())
    assert main(argv) == 0 and len(_index(out)) == 4  # a rerun leaves the failure as it is
    shutil.copy(videos / "c.mp4", videos / "broken.mp4")
    assert main([*argv, "--retry-failed"]) == 0
    retried = {r["video"]: r for r in _index(out)}
    assert len(_index(out)) == 4 and retried[str(videos / "broken.mp4")]["status"] == "ok"
    np.testing.assert_array_equal(np.load(out / "broken.npy"), np.load(out / "c.npy"))


def test_an_image_model_is_fed_with_its_own_normalisation(video_folder, tmp_path):
    out = tmp_path / "feats"
    video = str(video_folder / "c.mp4")
    torch.manual_seed(3)
    assert main(["features", "--model", "vit_tiny_patch16_224", "--random-weights", "--img-size", "32",
                 "--num-frames", "2", "--views", "1x1", "--output", str(out), "--workers", "0", video]) == 0
    torch.manual_seed(3)
    model = laps.create_model("vit_tiny_patch16_224", temporal="base2d", num_frames=2, img_size=32)
    data = timm.data.resolve_model_data_config(model.backbone)
    assert data["mean"] == (0.5, 0.5, 0.5)  # not ImageNet's: the test sees which one is used
    feed = model.video_cfg
    assert (feed.img_size, feed.mean, feed.std, feed.interpolation) == (32, data["mean"], data["std"], data["interpolation"])
    expected = dict(laps.extract_features(model, [video], views="1x1"))[video]
    np.testing.assert_allclose(np.load(out / "c.npy"), expected, atol=1e-5, rtol=0)


@pytest.mark.slow  # a torchrun of two processes and a third process, at the same time
def test_two_shards_one_under_torchrun_write_what_one_process_writes(feature_model_dir, video_folder, tmp_path):
    videos = tmp_path / "videos"
    for copy in range(3):  # 9 videos: shards of 5 and 4, the first split between two ranks
        shutil.copytree(video_folder, videos / f"part{copy}")
    flags = ["--checkpoint", str(feature_model_dir), "--workers", "0", "--views", "2x1", "--batch-size", "3", str(videos)]
    assert main(["features", "--output", str(tmp_path / "one"), *flags]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    shared = ["features", "--output", str(tmp_path / "split"), *flags]
    torchrun = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                                 "--master_port", "0", "-m", "laps", *shared, "--shard", "0/2"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    alone = subprocess.run([sys.executable, "-m", "laps", *shared, "--shard", "1/2"], env=env, capture_output=True,
                           text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-2000:]
    log, _ = torchrun.communicate(timeout=600)
    assert torchrun.returncode == 0, log[-2000:]
    one, split = _index(tmp_path / "one"), _index(tmp_path / "split")
    assert len(one) == len(split) == 9
    assert sorted(one, key=lambda r: r["video"]) == sorted(split, key=lambda r: r["video"])
    for r in one:
        np.testing.assert_allclose(np.load(tmp_path / "split" / r["file"]), np.load(tmp_path / "one" / r["file"]),
                                   atol=1e-5, rtol=0)
    files = {folder: sorted(p.relative_to(tmp_path / folder) for p in (tmp_path / folder).rglob("*.npy"))
             for folder in ("one", "split")}
    assert files["one"] == files["split"] and len(files["one"]) == 9


def test_image_model_options_with_a_checkpoint_are_refused(feature_model_dir, video_folder, tmp_path, capsys):
    code = main(["features", "--checkpoint", str(feature_model_dir), "--num-frames", "16", "--output",
                 str(tmp_path / "feats"), str(video_folder)])
    assert code == 2 and "--num-frames: options of --model only" in capsys.readouterr().err
    assert not (tmp_path / "feats").exists()
