"""The picture of a timeline: thumbnails, the scores the segments were decided on, the segments as
coloured bands, and the true segments with the boundary error when they are known."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from laps.analysis.plots import new_figure
from laps.serve.segmenting import BACKGROUND, boundary_errors

BACKGROUND_COLOUR = "0.85"


def _colours(classes: Sequence[str]) -> dict[str, Any]:
    """One colour per class name, the same on every band; background in light grey."""
    from matplotlib import colormaps

    cmap = colormaps["tab20" if len(classes) > 10 else "tab10"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(classes)} | {BACKGROUND: BACKGROUND_COLOUR}


def _band(ax, found: Sequence[dict[str, Any]], colours: dict[str, Any], name: str) -> None:
    for segment in found:
        ax.axvspan(segment["start"], segment["end"], color=colours.get(segment["label"], BACKGROUND_COLOUR), alpha=0.8)
        ax.text((segment["start"] + segment["end"]) / 2, 0.5, segment["label"], ha="center", va="center", fontsize=7,
                rotation=90 if segment["end"] - segment["start"] < 0.06 * ax.get_xlim()[1] else 0, clip_on=True)
    ax.set_yticks([0.5], [name], fontsize=8)
    ax.set_ylim(0, 1)


def truth_summary(found: Sequence[dict[str, Any]], truth: Sequence[dict[str, Any]]) -> str:
    """``segments found/true, boundary error mean / max`` as a line of text."""
    errors = boundary_errors(list(found), list(truth))
    text = f"{len(found)} segment{'' if len(found) == 1 else 's'} found, {len(truth)} true"
    if len(errors):
        text += f"; boundary error mean {errors.mean():.2f} s, max {errors.max():.2f} s"
    return text


def _strip_height(thumbnails: Sequence[tuple[float, np.ndarray]]) -> float:
    """Inches of the thumbnail strip: as tall as the strip is when it fills the plot's width (about
    10.5 of the figure's 12 inches), so that no blank lies above or below it."""
    if not thumbnails:
        return 0.3
    height, width = thumbnails[0][1].shape[0], sum(image.shape[1] for _, image in thumbnails)
    return float(np.clip(10.5 * height / width, 0.3, 1.6))


def plot_timeline(starts: np.ndarray, ends: np.ndarray, raw: np.ndarray, smoothed: np.ndarray, classes: Sequence[str],
                  found: Sequence[dict[str, Any]], duration: float, thumbnails: Sequence[tuple[float, np.ndarray]],
                  path: str | Path, background: float, truth: Sequence[dict[str, Any]] | None = None,
                  top_k: int = 3, dpi: int = 80) -> None:
    """Save the PNG: a strip of ``thumbnails`` ``[(time, uint8 (h, w, 3))]``; the ``smoothed``
    ``(W, K)`` scores of the ``top_k`` classes (plus every class a segment carries) over the window
    centres, with the ``raw`` ``(W, K)`` scores faint and the ``background`` level dashed; the
    ``found`` segments as a band of colours; and, given ``truth``, the true segments on a band of
    their own with the boundary error in the title; ``dpi`` pixels an inch (the figure is 12 inches
    wide)."""
    colours = _colours(classes)
    bands = 2 if truth else 1
    strip_height = _strip_height(thumbnails)
    figure = new_figure((12, strip_height + 3.4 + 0.5 * bands))
    axes = figure.subplots(2 + bands, 1, sharex=False,
                           gridspec_kw={"height_ratios": [strip_height, 2.2] + [0.35] * bands})
    strip, curves, bands_axes = axes[0], axes[1], axes[2:]
    if thumbnails:
        strip.imshow(np.concatenate([image for _, image in thumbnails], axis=1))
        strip.set_xticks([(i + 0.5) * thumbnails[0][1].shape[1] for i in range(len(thumbnails))],
                         [f"{t:.0f}s" for t, _ in thumbnails], fontsize=7)
    strip.set_yticks([])
    centres = (starts + ends) / 2
    shown = [int(k) for k in np.argsort(-smoothed.mean(0))[:top_k]]
    shown += [classes.index(s["label"]) for s in found if s["label"] in classes and classes.index(s["label"]) not in shown]
    for k in dict.fromkeys(shown):
        curves.plot(centres, raw[:, k].astype(np.float32), color=colours[classes[k]], alpha=0.25, linewidth=0.8)
        curves.plot(centres, smoothed[:, k], color=colours[classes[k]], linewidth=1.6, label=classes[k])
    curves.axhline(background, color="0.4", linestyle="--", linewidth=0.8, label=f"{BACKGROUND} ({background:g})")
    curves.set(ylabel="score (smoothed; raw faint)", ylim=(0, 1.02))
    curves.legend(loc="upper right", fontsize=7, ncol=min(4, len(shown) + 1))
    limit = max(duration, 1e-3)
    for ax in (curves, *bands_axes):
        ax.set_xlim(0, limit)
    _band(bands_axes[0], found, colours, "segments")
    if truth:
        _band(bands_axes[1], truth, colours, "truth")
        curves.set_title(truth_summary(found, truth), fontsize=9)
    for ax in axes[1:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (s)")
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
