"""How well each way of turning window scores into segments finds the true segments of long videos.

Long videos are made of parts of the synthetic classes (6-20 s each, random classes, 2-s clips as
the demo trains on), plus the 60-second case: 30 s of ``drifting_left`` then 30 s of
``brightening``. Every checkpoint scores every video once per stride (window 2 s); each decoding
then turns the same scores into segments, which are compared with the truth:

- ``segments``: segments found / true segments (background segments count as found);
- ``boundary error``: mean distance (s) from a true boundary to the nearest found one;
- ``within stride``: the share of true boundaries with a found boundary within one stride;
- ``time right``: the share of the video's time (sampled every 0.1 s) given its true label.

Usage: python benchmarks/timeline_decoding.py --checkpoints /tmp/tl/e2 /tmp/tl/e4 /tmp/tl/e8
Writes benchmarks/results/timeline_decoding.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from laps.data.encoding import write_video
from laps.data.synthetic import CLASSES
from laps.data.synthetic_timeline import long_synthetic, random_parts
from laps.serve.inference import load_model, model_timeline
from laps.serve.segmenting import boundary_errors, segments_from_states, smooth_scores, viterbi
from laps.serve.timeline import Timeline, open_stream

FPS, WINDOW = 8, 2.0
TWO_PARTS = [(CLASSES.index("drifting_left"), 30.0), (CLASSES.index("brightening"), 30.0)]


def threshold_states(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The earlier rule: each window's best class if its score reaches ``threshold``, else background."""
    return np.where(scores.max(1) >= threshold, scores.argmax(1), scores.shape[1])


def min_duration_states(scores: np.ndarray, threshold: float, shortest: int) -> np.ndarray:
    """:func:`threshold_states`, then every run shorter than ``shortest`` windows (background gaps
    included), shortest first, joins its longer neighbour."""
    states = threshold_states(scores, threshold)
    while True:
        cuts = [0, *(np.flatnonzero(np.diff(states)) + 1).tolist(), len(states)]
        runs = [(stop - first, first, stop) for first, stop in zip(cuts, cuts[1:])]
        if len(runs) == 1 or min(runs)[0] >= shortest:
            return states
        _, first, stop = min(runs)
        left = next((r for r in runs if r[2] == first), None)
        right = next((r for r in runs if r[1] == stop), None)
        neighbour = max((r for r in (left, right) if r), key=lambda r: r[0])
        states[first:stop] = states[neighbour[1]]


def decodings() -> dict[str, Any]:
    """name -> (smoothing, scores -> states)."""
    out: dict[str, Any] = {"threshold 0.5, smooth 3 (earlier rule)": (3, lambda s: threshold_states(s, 0.5))}
    for shortest in (3, 5):
        out[f"min duration {shortest} windows, threshold 0.3, smooth 3"] = (
            3, lambda s, n=shortest: min_duration_states(s, 0.3, n))
    for smooth in (1, 3):
        for switch in (1.0, 2.0, 4.0, 8.0):
            out[f"viterbi switch {switch:g}, background 0.2, smooth {smooth}"] = (
                smooth, lambda s, p=switch: viterbi(s, p, 0.2))
    for background in (0.1, 0.3):
        out[f"viterbi switch 4, background {background:g}, smooth 3"] = (3, lambda s, b=background: viterbi(s, 4.0, b))
    return out


def score(found: list[dict], truth: list[dict], stride: float) -> dict[str, float]:
    errors = boundary_errors(found, truth)
    grid = np.arange(0.05, truth[-1]["end"], 0.1)
    def label_at(segs: list[dict], t: float) -> str:
        return next((s["label"] for s in segs if s["start"] <= t < s["end"]), segs[-1]["label"])
    right = np.mean([label_at(found, t) == label_at(truth, t) for t in grid])
    return {"segments": len(found), "true_segments": len(truth), "boundary_error_sum": float(errors.sum()),
            "boundaries": len(errors), "within_stride": int((errors <= stride).sum()), "time_right": float(right)}


def window_accuracy(timeline: Timeline, truth: list[dict]) -> float:
    centres = (timeline.starts + timeline.ends) / 2
    labels = [next(s["label"] for s in truth if s["start"] <= c < s["end"] or s is truth[-1]) for c in centres]
    return float(np.mean([timeline.classes[k] == label for k, label in zip(timeline.scores.argmax(1), labels)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", nargs="+", required=True)
    parser.add_argument("--strides", default="0.5,1,2")
    parser.add_argument("--videos", type=int, default=4, help="random 120-s videos (plus the 60-s case)")
    parser.add_argument("--output", default="benchmarks/results/timeline_decoding.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    strides = [float(s) for s in args.strides.split(",")]
    work = Path(tempfile.mkdtemp())
    videos = {"two_parts_60s": long_synthetic(TWO_PARTS, seed=100, fps=FPS)}
    for i in range(args.videos):
        videos[f"random_120s_{i}"] = long_synthetic(random_parts(120, seed=i), seed=200 + i, fps=FPS)
    for name, (frames, _) in videos.items():
        write_video(work / f"{name}.mp4", frames, fps=FPS)
    rows, cases = [], []
    for checkpoint in args.checkpoints:
        model = load_model(checkpoint, "cpu")
        metrics = [json.loads(line) for line in (Path(checkpoint) / "metrics.jsonl").read_text().splitlines()]
        val_top1 = max(m["val_top1"] for m in metrics if "val_top1" in m)
        for stride in strides:
            totals: dict[str, dict[str, float]] = {}
            accuracies = []
            began = time.perf_counter()
            for name, (_, truth) in videos.items():
                with open_stream(str(work / f"{name}.mp4")) as container:
                    timeline = model_timeline(model, container, WINDOW, stride, progress=False)
                accuracies.append(window_accuracy(timeline, truth))
                for decoding, (smooth, decode) in decodings().items():
                    scores = smooth_scores(timeline.scores, smooth)
                    found = segments_from_states(decode(scores), scores, timeline.classes, timeline.starts,
                                                 timeline.ends, stride, timeline.duration)
                    result = score(found, truth, stride)
                    if name == "two_parts_60s":
                        cases.append({"checkpoint": checkpoint, "stride": stride, "decoding": decoding,
                                      "segments": [(round(s["start"], 2), round(s["end"], 2), s["label"]) for s in found]})
                    total = totals.setdefault(decoding, dict.fromkeys(result, 0.0))
                    for key, value in result.items():
                        total[key] += value / len(videos) if key == "time_right" else value
            for decoding, total in totals.items():
                rows.append({"checkpoint": checkpoint, "val_top1": val_top1, "window_accuracy": float(np.mean(accuracies)),
                             "stride": stride, "decoding": decoding, **total,
                             "boundary_error": total["boundary_error_sum"] / total["boundaries"]})
            print(f"{checkpoint} stride {stride}: scored in {time.perf_counter() - began:.1f}s", flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"command": "python benchmarks/timeline_decoding.py " + " ".join(
        f"--checkpoints {' '.join(args.checkpoints)}".split()), "rows": rows, "two_parts_60s": cases}, indent=1))
    print("| model (val top-1, window acc.) | stride | decoding | segments found / true | boundary error (s) | within stride | time right |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {Path(r['checkpoint']).name} ({100 * r['val_top1']:.0f}%, {100 * r['window_accuracy']:.0f}%) | "
              f"{r['stride']:g} | {r['decoding']} | {r['segments']:.0f} / {r['true_segments']:.0f} | "
              f"{r['boundary_error']:.2f} | {r['within_stride']:.0f} / {r['boundaries']:.0f} | {100 * r['time_right']:.1f}% |")


if __name__ == "__main__":
    main()
