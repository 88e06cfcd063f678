"""A features folder knows what it holds: a run with other settings is refused in one line naming
the difference (or replaces them with --overwrite); a second run into a folder another live run
is writing is refused, while the first completes; a clean run leaves no lock file behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from laps.cli import main
from tests.serve.conftest import save_feature_model


def _index(out):
    return [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]


def _stats(out):
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*")}


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    """The architecture of ``feature_model_dir`` with other weights."""
    return save_feature_model(tmp_path_factory.mktemp("other_model"), seed=1)


@pytest.fixture(scope="module")
def done_folder(feature_model_dir, video_folder, tmp_path_factory):
    """A clip-mode folder of the three videos, and the flags that wrote it but the model's."""
    out = tmp_path_factory.mktemp("done") / "feats"
    flags = ["--output", str(out), "--workers", "0", "--views", "1x1", str(video_folder)]
    assert main(["features", "--checkpoint", str(feature_model_dir), *flags]) == 0
    return out, flags


def test_a_clean_run_leaves_no_lock_and_the_same_settings_skip_what_is_done(feature_model_dir, done_folder, capsys):
    out, flags = done_folder
    assert not [p.name for p in out.rglob(".*")]  # no lock file, no registration left after a clean run
    before = _stats(out)
    assert main(["features", "--checkpoint", str(feature_model_dir), *flags]) == 0
    assert "0 written, 3 done before" in capsys.readouterr().err and _stats(out) == before


@pytest.mark.parametrize("changed, named", [
    (["--window", "2", "--stride", "1"], "window mode --window 2 --stride 1 (it holds clip mode --views 1x1)"),
    (["--dtype", "float16"], "--dtype float16 (it holds float32)"),
    (["other checkpoint"], "other weights (sha256 "),
    pytest.param(["--model", "vit_tiny_patch16_224", "--random-weights", "--img-size", "32", "--num-frames", "4"],
                 "other weights (sha256 ", marks=pytest.mark.slow),  # a 12-block model to build
])
def test_other_settings_are_refused_naming_the_difference(changed, named, feature_model_dir, other_model_dir,
                                                          done_folder, capsys):
    out, flags = done_folder
    before = _stats(out)
    if changed == ["other checkpoint"]:
        changed = ["--checkpoint", str(other_model_dir)]
    elif "--model" not in changed:
        changed = ["--checkpoint", str(feature_model_dir), *changed]
    capsys.readouterr()
    assert main(["features", *changed, *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert "holds features of other settings" in err and "--overwrite" in err and "another --output" in err
    assert _stats(out) == before  # nothing written, nothing removed, no lock file left


def test_overwrite_replaces_the_features_and_nothing_else(feature_model_dir, video_folder, tmp_path):
    out = tmp_path / "feats"
    flags = ["--checkpoint", str(feature_model_dir), "--output", str(out), "--workers", "0", "--views", "1x1",
             str(video_folder)]
    assert main(["features", *flags]) == 0
    (out / "notes.txt").write_text("mine")
    assert main(["features", *flags, "--window", "2", "--overwrite"]) == 0
    records = _index(out)
    assert len(records) == 3 and [r["shape"][0] for r in records] == [1, 1, 2]  # (n, D): window mode
    assert all(np.load(out / r["file"]).ndim == 2 for r in records)
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "settings.json").read_text())["mode"] == "window"
    assert main(["features", *flags, "--window", "2", "--overwrite"]) == 0 and len(_index(out)) == 3  # same: kept


@pytest.mark.slow  # two processes of laps features at once
def test_a_second_run_into_a_folder_being_written_is_refused(feature_model_dir, video_folder, tmp_path):
    """Both start together; the one that registers first blocks on a FIFO (a video whose writer has
    not come yet) while it holds the folder, so the other meets it there."""
    fifo = tmp_path / "late.mp4"
    os.mkfifo(fifo)
    out = tmp_path / "feats"
    argv = [sys.executable, "-m", "laps", "features", "--checkpoint", str(feature_model_dir), "--output", str(out),
            "--workers", "0", "--window", "2", str(video_folder), str(fifo)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    try:
        deadline = time.monotonic() + 120
        while all(run.poll() is None for run in runs) and time.monotonic() < deadline:
            time.sleep(0.2)
        while any(run.poll() is None for run in runs) and time.monotonic() < deadline:
            try:  # the FIFO's writer comes and goes once a reader waits: that reader gets an empty stream
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                break
            except OSError:
                time.sleep(0.2)
        codes = [run.wait(timeout=120) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    (winner, _), (_, err) = sorted(((run, run.communicate()[1]) for run in runs), key=lambda r: r[0].returncode)
    assert sorted(codes) == [1, 2], codes  # the FIFO's empty stream is a failed video of the first
    assert len(err.strip().splitlines()) == 1 and f"another laps features (pid {winner.pid} " in err, err[-2000:]
    assert "--shard" in err
    records = _index(out)
    assert sorted(r["video"] for r in records) == sorted([*(str(video_folder / v) for v in
                                                             ("a/x.mp4", "b/x.mp4", "c.mp4")), str(fifo)])
    assert not [p.name for p in out.rglob(".*")]
