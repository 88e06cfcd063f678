"""`laps predict` under load: 500 small clips, 10% of them broken. It finishes, reports each broken
file, keeps its memory flat, and its JSON Lines output is never passed off as complete when the
process is killed midway."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from laps.data.encoding import write_video
from laps.engine.trainer import train
from tests.helpers import tiny_config

NUM_VIDEOS, BROKEN_EVERY = 500, 10


@pytest.fixture(scope="module")
def load_set(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    run = root / "run"
    train(tiny_config(tiny_data, run, **{"optim.epochs": 1, "data.val_list": None}))
    videos = root / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    sample = None
    for i in range(NUM_VIDEOS):
        path = videos / f"clip_{i:03d}.mp4"
        if i % BROKEN_EVERY == BROKEN_EVERY - 1:  # broken three ways: noise, empty, a truncated real file
            kind = (i // BROKEN_EVERY) % 3
            path.write_bytes(rng.bytes(2000) if kind == 0 else b"" if kind == 1 else sample[: len(sample) // 3])
        else:
            write_video(path, rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8), fps=8)
            sample = sample or path.read_bytes()
    return run, videos


def _rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_predict_over_500_clips_with_broken_ones_keeps_memory_flat(load_set, tmp_path):
    run, videos = load_set
    out = tmp_path / "predictions.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "laps", "predict", "--checkpoint", str(run), str(videos),
                             "--views", "1x1", "--output", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    rss = {}
    while proc.poll() is None:  # RSS when the output holds ~10%, ~50% and ~90% of the videos
        done = len(_lines(tmp_path / "predictions.jsonl.partial"))
        for mark in (50, 250, 450):
            if mark not in rss and done >= mark:
                rss[mark] = _rss_mb(proc.pid)
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 1, stderr[-2000:]  # 1: some videos could not be read
    rows = [json.loads(line) for line in _lines(out)]
    assert [r["path"] for r in rows] == sorted(str(p) for p in videos.iterdir())
    broken = {r["path"] for r in rows if "error" in r}
    assert broken == {str(videos / f"clip_{i:03d}.mp4") for i in range(BROKEN_EVERY - 1, NUM_VIDEOS, BROKEN_EVERY)}
    assert all(len(r["top"]) == 5 for r in rows if "error" not in r)
    for path in broken:
        assert f"{path}: ERROR" in stderr
    assert f"{NUM_VIDEOS} videos, {len(broken)} unreadable -> {out}" in stderr
    assert not (tmp_path / "predictions.jsonl.partial").exists()
    print(f"\npredict RSS (MB) at 50 / 250 / 450 of {NUM_VIDEOS} videos: "
          + " / ".join(f"{rss[m]:.1f}" for m in sorted(rss)))
    assert set(rss) == {50, 250, 450}
    assert rss[450] - rss[50] < 40, rss  # flat: no per-video growth (40 MB over 400 videos: < 0.1 MB each)


@pytest.mark.slow
def test_predict_killed_midway_never_leaves_an_incomplete_output(load_set, tmp_path):
    run, videos = load_set
    out = tmp_path / "predictions.jsonl"
    partial = tmp_path / "predictions.jsonl.partial"
    proc = subprocess.Popen([sys.executable, "-m", "laps", "predict", "--checkpoint", str(run), str(videos),
                             "--views", "1x1", "--output", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(_lines(partial)) < 100 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    lines = _lines(partial)
    assert 100 <= len(lines) < NUM_VIDEOS
    rows = [json.loads(line) for line in lines]  # every line written is whole
    assert [r["path"] for r in rows] == sorted(str(p) for p in videos.iterdir())[: len(rows)]
