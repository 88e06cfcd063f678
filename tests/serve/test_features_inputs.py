"""``laps features`` judges its inputs as ``laps predict`` does (:mod:`laps.data.inputs`): a still
image, an empty folder, a mistyped path and each bad flag get one line and exit 2 with nothing
created; a failed video is a record, also under torchrun, and a rerun names the ones it skips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from laps.cli import main


@pytest.fixture
def odd_inputs(tmp_path):
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "photo.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "taken").write_text("a file")
    return tmp_path


CASES = {  # inputs and flags -> the line
    "a still image": (["photo.png"], [], "photo.png: a still image, not a video"),
    "an empty folder": (["empty"], [], "empty: a folder with no video file in it"),
    "a mistyped folder": (["nonexist/"], [], "nonexist: no such file or folder; check the path"),
    "--stride alone": (["VIDEOS"], ["--stride", "1"], "--stride 1 without --window"),
    "a negative shard": (["VIDEOS"], ["--shard", "-1/2"], "--shard must be I/N with 0 <= I < N"),
    "no clip per batch": (["VIDEOS"], ["--batch-size", "0"], "--batch-size must be at least 1 clip, got 0"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2_with_nothing_created(case, odd_inputs, feature_model_dir, video_folder,
                                                                capsys):
    inputs, flags, line = CASES[case]
    inputs = [str(video_folder) if item == "VIDEOS" else str(odd_inputs / item) for item in inputs]
    out = odd_inputs / "feats"
    assert main(["features", "--checkpoint", str(feature_model_dir), "--output", str(out), "--workers", "0",
                 *flags, *inputs]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and line in err, err
    assert not out.exists()


def test_an_output_that_is_a_file_is_one_line(odd_inputs, feature_model_dir, video_folder, capsys):
    taken = odd_inputs / "taken"
    assert main(["features", "--checkpoint", str(feature_model_dir), "--output", str(taken), "--workers", "0",
                 str(video_folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"laps features: error: --output {taken} is a file; give a folder (a new one, or one laps features wrote)"
    assert taken.read_text() == "a file"


@pytest.mark.parametrize("case", ["a still image", "an empty folder", "a mistyped folder"])
def test_predict_judges_the_same_inputs_in_the_same_words(case, odd_inputs, feature_model_dir, capsys):
    inputs, _, line = CASES[case]
    out = odd_inputs / "out" / "predictions.jsonl"
    assert main(["predict", "--checkpoint", str(feature_model_dir), "--output", str(out),
                 *(str(odd_inputs / item) for item in inputs)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and line in err, err
    assert not (odd_inputs / "out").exists()


def test_a_rerun_names_the_failed_videos_it_skips(feature_model_dir, video_folder, tmp_path, capsys):
    videos = tmp_path / "videos"
    shutil.copytree(video_folder, videos)
    (videos / "broken.mp4").write_bytes(b"")
    argv = ["features", "--checkpoint", str(feature_model_dir), "--output", str(tmp_path / "feats"), "--workers", "0",
            "--views", "1x1", str(videos)]
    assert main(argv) == 1
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().err.strip().endswith(
        "4 videos: 0 written, 3 done before, 0 failed -> " + str(tmp_path / "feats")
        + "; 1 failed in an earlier run, skipped (--retry-failed tries them again)")


@pytest.mark.slow  # a torchrun of two processes
def test_a_failed_video_under_torchrun_is_a_record_not_a_crashed_rank(feature_model_dir, video_folder, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(video_folder, videos)
    (videos / "broken.mp4").write_bytes(b"")  # the third of four in order: rank 0 takes it
    out = tmp_path / "feats"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "0",
                          "-m", "laps", "features", "--checkpoint", str(feature_model_dir), "--output", str(out),
                          "--workers", "0", "--views", "1x1", str(videos)], env=env, capture_output=True, text=True,
                         timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "ChildFailedError" not in log, log[-3000:]
    assert "1 failed ->" in log and "0 failed ->" in log  # each rank's line: rank 0 met the broken video
    records = {r["video"]: r for r in map(json.loads, (out / "index.jsonl").read_text().splitlines())}
    assert len(records) == 4 and records[str(videos / "broken.mp4")]["status"] == "failed"
    assert not [p.name for p in out.rglob(".*")]
