"""Timelines: clips slid over a long video find the boundaries of its parts within one stride, with
memory that does not grow with the video's length."""

import functools
import http.server
import json
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from torch import nn

from laps.data.encoding import write_video
from laps.data.synthetic import synthetic_clip
from laps.errors import DataError
from laps.serve.segmenting import BACKGROUND, boundary_errors, read_truth, smooth_scores, viterbi
from laps.serve.timeline import open_stream, segments, slide, write_timeline

COLOURS = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30], [30, 230, 230]], dtype=np.uint8)
FPS = 8


class ColourOracle(nn.Module):
    """Logits: per class, the number of the clip's frames whose mean colour is nearest to it (a
    model that is right about every frame, so the test sees only the timeline's own errors)."""

    def forward(self, clips):  # (B, T, C, H, W) float in [0, 255]
        means = clips.mean(dim=(-1, -2))  # (B, T, C)
        nearest = torch.cdist(means, torch.tensor(COLOURS, dtype=torch.float32)).argmin(-1)  # (B, T)
        return nn.functional.one_hot(nearest, len(COLOURS)).sum(1).float() * 5


def _colour_video(path, durations):
    """Parts of flat colours, ``durations`` seconds each -> the boundaries (seconds) and labels."""
    labels = [i % len(COLOURS) for i in range(len(durations))]
    frames = np.concatenate([np.broadcast_to(COLOURS[k], (round(d * FPS), 24, 32, 3)) for k, d in zip(labels, durations)])
    write_video(path, frames + np.random.default_rng(0).integers(0, 8, frames.shape, dtype=np.uint8), fps=FPS)
    return np.cumsum(durations)[:-1], labels


@pytest.mark.parametrize("seconds, stride", [(60, 1.0), pytest.param(300, 0.5, marks=pytest.mark.slow),
                                             pytest.param(300, 1.0, marks=pytest.mark.slow)])
def test_segments_match_the_parts_of_a_long_video_within_one_stride(tmp_path, seconds, stride):
    durations = np.random.default_rng(1).choice(np.arange(6, 15.5, 0.5), seconds // 5)
    durations = np.append(durations[np.cumsum(durations) < seconds - 5], 0)
    durations[-1] = seconds - durations.sum()  # parts of 6 to 20 s, filling the video exactly
    boundaries, labels = _colour_video(tmp_path / "long.mp4", durations)
    with open_stream(str(tmp_path / "long.mp4")) as container:
        timeline = slide(ColourOracle(), container, [f"c{k}" for k in range(5)], num_frames=4, img_size=24,
                         normalize=lambda clips: clips.float(), window=2.0, stride=stride, progress=False)
    assert timeline.scores.shape == (len(timeline.starts), 5)
    assert timeline.starts[0] == 0 and np.allclose(np.diff(timeline.starts), stride)
    found = segments(timeline, smooth=1)
    assert [s["label"] for s in found] == [f"c{k}" for k in labels]
    assert found[0]["start"] == 0 and abs(found[-1]["end"] - sum(durations)) <= stride
    for boundary, (left, right) in zip(boundaries, zip(found, found[1:])):
        assert abs(left["end"] - boundary) <= stride and abs(right["start"] - boundary) <= stride
    assert all(s["score"] > 0.9 for s in found)


def test_a_video_shorter_than_the_window_gives_one_padded_clip(tmp_path):
    _colour_video(tmp_path / "short.mp4", [1.0])
    with open_stream(str(tmp_path / "short.mp4")) as container:
        timeline = slide(ColourOracle(), container, [f"c{k}" for k in range(5)], num_frames=4, img_size=24,
                         normalize=lambda clips: clips.float(), window=2.0, stride=1.0, progress=False)
    assert len(timeline.starts) == 1 and timeline.scores[0].argmax() == 0


class NoisyOracle(ColourOracle):
    """:class:`ColourOracle` wrong about a seeded ``error`` share of the clips (a random other class)."""

    def __init__(self, error: float, seed: int = 0):
        super().__init__()
        self.error, self.generator = error, torch.Generator().manual_seed(seed)
        self.wrong = 0

    def forward(self, clips):
        logits = super().forward(clips)
        flip = torch.rand(len(logits), generator=self.generator) < self.error
        other = (logits.argmax(1) + torch.randint(1, len(COLOURS), (len(logits),), generator=self.generator)) % len(COLOURS)
        logits[flip] = nn.functional.one_hot(other[flip], len(COLOURS)).float() * 20
        self.wrong += int(flip.sum())
        return logits


def _noisy_scores(truth: np.ndarray, classes: int, right: float, seed: int) -> np.ndarray:
    """Per-window scores ``(W, classes)``: Dirichlet noise, plus the true class on a ``right`` share of
    the windows and a random wrong class on the others."""
    rng = np.random.default_rng(seed)
    scores = rng.dirichlet(np.full(classes, 0.5), len(truth))
    correct = rng.random(len(truth)) < right
    favoured = np.where(correct, truth, (truth + rng.integers(1, classes, len(truth))) % classes)
    scores[np.arange(len(truth)), favoured] += 1.5
    return scores / scores.sum(1, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_recovers_the_parts_from_a_model_right_on_90_percent_of_windows(seed):
    rng = np.random.default_rng(100 + seed)
    lengths = rng.integers(6, 21, 8)  # parts of 6-20 windows
    labels = [int(rng.integers(10))]
    while len(labels) < len(lengths):
        labels.append(int((labels[-1] + rng.integers(1, 10)) % 10))
    truth = np.repeat(labels, lengths)
    scores = _noisy_scores(truth, 10, right=0.9, seed=seed)
    assert 0.8 < (scores.argmax(1) == truth).mean() < 0.95  # the model really is about 90% right
    states = viterbi(smooth_scores(scores, 3), switch=4.0, background=0.2)
    found_cuts = np.flatnonzero(np.diff(states)) + 1
    assert [int(states[i]) for i in [0, *found_cuts]] == labels
    assert np.abs(found_cuts - np.cumsum(lengths)[:-1]).max() <= 1


def test_the_earlier_threshold_rule_breaks_the_same_scores_into_many_segments():
    truth = np.repeat([0, 1], 30)
    scores = smooth_scores(_noisy_scores(truth, 10, right=0.9, seed=0), 3)
    broken = np.where(scores.max(1) >= 0.5, scores.argmax(1), 10)
    assert (np.diff(broken) != 0).sum() > 3  # what the decoding exists for
    assert (np.diff(viterbi(scores, 4.0, 0.2)) != 0).sum() == 1


def test_a_model_right_on_90_percent_of_clips_gives_the_true_segments_of_a_video(tmp_path):
    durations = [12.0, 9.0, 15.0, 10.0, 14.0]
    boundaries, labels = _colour_video(tmp_path / "long.mp4", durations)
    model = NoisyOracle(error=0.1)
    with open_stream(str(tmp_path / "long.mp4")) as container:
        timeline = slide(model, container, [f"c{k}" for k in range(5)], num_frames=4, img_size=24,
                         normalize=lambda clips: clips.float(), window=2.0, stride=1.0, progress=False)
    assert 0.05 < model.wrong / len(timeline.starts) < 0.15
    found = segments(timeline)
    assert [s["label"] for s in found] == [f"c{k}" for k in labels]
    for boundary, segment in zip(boundaries, found):
        assert abs(segment["end"] - boundary) <= 1.0
    truth = [{"start": float(a), "end": float(b), "label": f"c{k}"}
             for a, b, k in zip(np.r_[0, boundaries], np.r_[boundaries, sum(durations)], labels)]
    write_timeline(timeline, found, tmp_path / "out", truth=truth)
    report = json.loads((tmp_path / "out" / "timeline.json").read_text())
    assert len(report["truth"]["boundary_errors"]) == 4 and max(report["truth"]["boundary_errors"]) <= 1.0
    assert (tmp_path / "out" / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_boundary_errors_measure_each_true_boundary_to_the_nearest_found_one():
    truth = [{"end": 10.0}, {"end": 20.0}, {"end": 30.0}]
    assert boundary_errors([{"end": 11.0}, {"end": 14.0}, {"end": 30.0}], truth).tolist() == [1.0, 6.0]
    assert boundary_errors([{"end": 30.0}], truth).tolist() == [np.inf, np.inf]  # one segment: no boundary


class Unsure(nn.Module):
    """The same logits for every class: no class is ever confident."""

    def forward(self, clips):
        return torch.zeros(len(clips), 10)


def test_a_video_no_class_explains_is_one_background_segment(tmp_path):
    _synthetic_video(tmp_path / "long.mp4", 16)
    with open_stream(str(tmp_path / "long.mp4")) as container:
        timeline = slide(Unsure(), container, [f"c{k}" for k in range(10)], num_frames=4, img_size=32,
                         normalize=lambda clips: clips.float(), window=2.0, stride=1.0, progress=False)
    found = segments(timeline)
    assert [s["label"] for s in found] == [BACKGROUND]
    assert found[0]["start"] == 0 and found[0]["end"] == timeline.duration
    assert found[0]["score"] == pytest.approx(0.1, abs=1e-3)  # the best class's score there


def test_a_truth_file_needs_start_end_label(tmp_path):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("start,end,label\n0,30,drifting_left\n30,60,brightening\n")
    bad.write_text("begin,finish\n0,30\n")
    assert read_truth(good)[1] == {"start": 30.0, "end": 60.0, "label": "brightening"}
    with pytest.raises(DataError, match="start,end,label"):
        read_truth(bad)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory):
    from laps.engine.trainer import train
    from tests.helpers import tiny_config

    run = tmp_path_factory.mktemp("run")
    train(tiny_config(tiny_data, run, **{"optim.epochs": 1, "data.val_list": None}))
    return run


def _synthetic_video(path, seconds, faststart=False):
    """Synthetic classes one after another, 4 s each, at FPS frames a second (32 px)."""
    clips = [synthetic_clip(k % 10, seed=k, num_frames=4 * FPS, size=32) for k in range(int(seconds // 4))]
    write_video(path, np.concatenate(clips), fps=FPS, faststart=faststart)


@pytest.fixture
def http_server(tmp_path):
    """Serves ``tmp_path`` over HTTP on localhost -> its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.slow  # a subprocess that reads the video from its stdin
def test_the_cli_writes_json_csv_and_png_from_a_file_stdin_or_url(tiny_run, tmp_path, http_server, capsys):
    from laps.cli import main

    _synthetic_video(tmp_path / "long.mp4", 40, faststart=True)  # moov first: readable from a pipe
    truth = tmp_path / "truth.csv"
    truth.write_text("start,end,label\n" + "".join(f"{4 * k},{4 * k + 4},c{k}\n" for k in range(10)))
    sources = {"file": str(tmp_path / "long.mp4"), "stdin": "-", "url": f"{http_server}/long.mp4"}
    for source, video in sources.items():
        out = tmp_path / f"from_{source}"
        argv = ["predict", "--checkpoint", str(tiny_run), "--timeline", "--window", "2", "--stride", "1",
                "--truth", str(truth), "--output", str(out), video]
        if source == "stdin":
            with open(tmp_path / "long.mp4", "rb") as stdin:
                done = subprocess.run([sys.executable, "-m", "laps", *argv], stdin=stdin, capture_output=True, text=True,
                                      timeout=300)
            code, stderr = done.returncode, done.stderr
        else:
            code, stderr = main(argv), capsys.readouterr().err
        assert code == 0, stderr[-2000:]
        report = json.loads((out / "timeline.json").read_text())
        assert len(report["scores"]["start"]) == 39 and len(report["scores"]["probs"][0]) == 10
        assert abs(report["duration"] - 40) < 0.5
        assert all({"start", "end", "label", "score"} == set(s) for s in report["segments"])
        assert len(report["truth"]["boundary_errors"]) == 9 and re.search(r"\d+ segments? found, 10 true", stderr)
        rows = (out / "timeline.csv").read_text().splitlines()
        assert len(rows) == 40 and rows[0].split(",")[:3] == ["start", "end", report["classes"][0]]
        assert (out / "timeline.png").read_bytes()[:4] == b"\x89PNG"
    reports = [json.loads((tmp_path / f"from_{source}" / "timeline.json").read_text()) for source in sources]
    assert reports[0] == reports[1] == reports[2]


#: runs in a fresh process: the timeline of a video, with the resident memory when the decoder
#: reaches 1 and 5 minutes of video (after the model, the imports and the first windows are in place)
RSS_SCRIPT = """
import json, sys
import laps
from laps.serve import timeline
from laps.serve.inference import model_timeline

run, video, out = sys.argv[1:]
rss = {}
frames = timeline._frames
def measured(container):
    for time, rgb in frames(container):
        for mark in (60, 300):
            if mark not in rss and time >= mark:
                rss[mark] = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
        yield time, rgb
timeline._frames = measured
model = laps.from_pretrained(run)
with timeline.open_stream(video) as container:
    result = model_timeline(model, container, window=2.0, stride=1.0, progress=False)
timeline.write_timeline(result, timeline.segments(result), out)
print(json.dumps(rss))
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_the_video_length(tiny_run, tmp_path):
    video = tmp_path / "long.mp4"
    _synthetic_video(video, 5 * 60 + 4)
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT, str(tiny_run), str(video), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, check=True)
    rss = {int(k): v for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
    print(f"\ntimeline RSS at 1 min {rss[60]:.1f} MB, at 5 min {rss[300]:.1f} MB")
    assert rss[300] - rss[60] < 10, rss  # flat: nothing a window leaves behind accumulates
    assert len(json.loads((tmp_path / "out" / "timeline.json").read_text())["scores"]["start"]) == 303
