"""Segments from per-window class scores: a Viterbi pass with a switch penalty and a background state.

The scores ``(W, K)`` of ``W`` windows over ``K`` classes are first averaged over ``smooth``
windows. The decoding then picks, for every window, one of ``K + 1`` states: a class, or
``background`` for windows that no class explains. It maximises

    sum over windows of log(score of the window's state) - switch * (number of state changes)

where the score of ``background`` is the constant ``background``: a window joins a class only when
that class's smoothed score beats ``background``, and a run of windows changes state only when the
evidence for the change, summed over the run, outweighs ``switch`` nats. A single low window
between two windows of the same class costs less than the two switches around it, so it no longer
breaks a segment; a real change, held for a few windows, pays its switch. Runs of windows in the
same state merge into ``{"start", "end", "label", "score"}``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from laps.errors import DataError

#: the label of windows that no class explains
BACKGROUND = "background"
#: defaults, chosen by measurement (docs/deploy.md, benchmarks/timeline_decoding.py)
SMOOTH, SWITCH, BACKGROUND_SCORE = 3, 4.0, 0.2


def smooth_scores(scores: np.ndarray, smooth: int) -> np.ndarray:
    """``(W, K)`` scores averaged over a centred window of ``smooth`` windows (edges repeated) -> ``(W, K)`` float32."""
    scores = scores.astype(np.float32)
    if smooth <= 1:
        return scores
    kernel = np.ones(smooth, dtype=np.float32) / smooth
    padded = np.pad(scores, ((smooth // 2, smooth - 1 - smooth // 2), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(scores.shape[1])], axis=1)


def viterbi(scores: np.ndarray, switch: float, background: float) -> np.ndarray:
    """Best state per window of ``(W, K)`` scores in ``(0, 1]``: ``(W,)`` ints, ``K`` for background.

    Maximises the summed log scores minus ``switch`` per change of state; background scores
    ``background`` in every window. The way back is one byte per window and state (stayed, or came
    from that step's best state): 14 MB for ten hours at one window a second and 400 classes."""
    log = np.log(np.maximum(np.concatenate([scores, np.full((len(scores), 1), background, np.float32)], 1), 1e-6))
    stayed = np.zeros(log.shape, dtype=bool)
    came_from = np.zeros(len(log), dtype=np.int64)  # the best state of the window before
    total = log[0].copy()
    for i in range(1, len(log)):
        came_from[i] = best = int(total.argmax())
        stayed[i] = total >= total[best] - switch  # staying costs nothing, switching costs ``switch``
        total = np.where(stayed[i], total, total[best] - switch) + log[i]
    path = np.empty(len(log), dtype=np.int64)
    path[-1] = int(total.argmax())
    for i in range(len(log) - 1, 0, -1):
        path[i - 1] = path[i] if stayed[i, path[i]] else came_from[i]
    return path


def segments_from_states(states: np.ndarray, scores: np.ndarray, classes: list[str], starts: np.ndarray,
                         ends: np.ndarray, stride: float, duration: float) -> list[dict[str, Any]]:
    """Runs of equal ``(W,)`` states -> ``[{"start", "end", "label", "score"}]`` in seconds.

    Window ``k`` stands for the ``stride`` seconds around its centre (the first from 0, the last to
    ``duration``). ``score``: the mean smoothed score ``(W, K)`` of the label over the segment; for
    background, the mean of the best class's score there (how close a class came)."""
    centres = (starts + ends) / 2
    cuts = [0, *(np.flatnonzero(np.diff(states)) + 1).tolist(), len(states)]
    out: list[dict[str, Any]] = []
    for first, stop in zip(cuts, cuts[1:]):
        state = int(states[first])
        run = scores[first:stop]
        out.append({
            "start": 0.0 if first == 0 else max(0.0, float(centres[first] - stride / 2)),
            "end": duration if stop == len(states) else min(duration, float(centres[stop - 1] + stride / 2)),
            "label": BACKGROUND if state == len(classes) else classes[state],
            "score": float(run.max(1).mean() if state == len(classes) else run[:, state].mean()),
        })
    return out


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """A CSV of true segments with a header ``start,end,label`` (seconds) -> ``[{"start", "end", "label"}]``."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        truth = [{"start": float(r["start"]), "end": float(r["end"]), "label": r["label"]} for r in rows]
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{path}: expected CSV rows 'start,end,label' (seconds) under that header ({err})") from None
    if not truth:
        raise DataError(f"{path}: no segments; expected CSV rows 'start,end,label' under that header")
    return truth


def boundary_errors(found: list[dict[str, Any]], truth: list[dict[str, Any]]) -> np.ndarray:
    """For every boundary between two true segments, the distance (seconds) to the nearest boundary
    between two found segments -> ``(boundaries,)``; ``inf`` where nothing was found to compare."""
    true = np.array([s["end"] for s in truth[:-1]])
    guessed = np.array([s["end"] for s in found[:-1]])
    if not len(guessed):
        return np.full(len(true), np.inf)
    return np.abs(true[:, None] - guessed[None, :]).min(1)
