"""What the page shows for one video: the top classes of a short one; for a long one, its timeline
and the share of its time each label holds there (one clip spread over a video of several actions
would name an action none of its parts shows).

Everything here works on a local file; :mod:`laps.app.server` saves uploads and downloads URLs first.
"""

from __future__ import annotations

import base64
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from laps.data.decoding import BrokenVideoError
from laps.errors import VideoDecodeError
from laps.models import VideoClassifier
from laps.serve.inference import iter_predictions, model_timeline
from laps.serve.segmenting import BACKGROUND_SCORE, SMOOTH, SWITCH, smooth_scores
from laps.serve.timeline import Timeline, container_duration, open_stream, segments


@dataclass(frozen=True)
class Settings:
    """How videos are read: ``views`` for the top classes; a video of ``long_after`` seconds or more
    also gets a timeline of ``window``-second clips every ``stride`` seconds, decoded with ``smooth``,
    ``switch`` and ``background`` (see :mod:`laps.serve.segmenting`)."""

    top_k: int = 5
    views: str = "1x3"
    long_after: float = 8.0
    window: float = 2.0
    stride: float = 1.0
    smooth: int = SMOOTH
    switch: float = SWITCH
    background: float = BACKGROUND_SCORE


#: pixels an inch of the timeline's picture: 1200 wide, shown at that size where the page is narrow
PLOT_DPI = 100


def _png(image: np.ndarray) -> str:
    """uint8 ``(h, w, 3)`` -> a ``data:image/png;base64,...`` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def video_duration(path: str) -> float:
    """Seconds of video in the file at ``path``; :class:`VideoDecodeError` saying what the file is
    if it is not a video (the judgement every reader of videos makes: :mod:`laps.data.decoding`)."""
    with open_stream(path) as container:
        return container_duration(container) or 0.0


def _timeline(model: VideoClassifier, path: str, settings: Settings) -> Timeline:
    with open_stream(path) as container:
        return model_timeline(model, container, settings.window, settings.stride, progress=False)


def timeline_view(timeline: Timeline, settings: Settings) -> dict[str, Any]:
    """The timeline's PNG (data URL) and its segments, each with the thumbnail nearest its middle."""
    from laps.serve.timeline_plot import plot_timeline

    found = segments(timeline, settings.smooth, settings.switch, settings.background)
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "timeline.png"
        plot_timeline(timeline.starts, timeline.ends, timeline.scores, smooth_scores(timeline.scores, settings.smooth),
                      timeline.classes, found, timeline.duration, timeline.thumbnails, png, settings.background,
                      dpi=PLOT_DPI)
        plot = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    times = np.array([t for t, _ in timeline.thumbnails])
    rows = []
    for segment in found:
        nearest = int(np.abs(times - (segment["start"] + segment["end"]) / 2).argmin())
        rows.append({**segment, "thumbnail": _png(timeline.thumbnails[nearest][1])})
    return {"png": plot, "segments": rows, "windows": len(timeline.starts)}


def time_shares(found: list[dict[str, Any]], top_k: int) -> list[dict[str, Any]]:
    """The ``top_k`` labels (``background`` included) holding the most of the segments' time ->
    ``[{"label", "prob"}]``, ``prob`` being the share of the time, largest first."""
    seconds: dict[str, float] = {}
    for segment in found:
        seconds[segment["label"]] = seconds.get(segment["label"], 0.0) + segment["end"] - segment["start"]
    total = sum(seconds.values()) or 1.0
    ranked = sorted(seconds.items(), key=lambda pair: -pair[1])[:top_k]
    return [{"label": label, "prob": length / total} for label, length in ranked]


def analyse(model: VideoClassifier, path: str, name: str, settings: Settings) -> dict[str, Any]:
    """``{"name", "duration", "top": [{"label", "prob"}], "timeline": {...} or None, "seconds"}`` for
    the video file at ``path``: ``top`` holds the classes of the whole video (as ``laps predict``
    gives them) when it is shorter than ``settings.long_after``, else the timeline's labels with
    their share of the time (:func:`time_shares`). Bad videos raise :class:`VideoDecodeError` with
    a message for the user."""
    began = time.perf_counter()
    try:
        duration = video_duration(path)
        if duration >= settings.long_after:
            view = timeline_view(_timeline(model, path, settings), settings)
            top = time_shares(view["segments"], settings.top_k)
        else:
            item = next(iter_predictions(model, [path], settings.views, settings.top_k))
            if "error" in item:
                raise VideoDecodeError(f"{path}: {item['error']}")
            view, top = None, item["top"]
    except VideoDecodeError as err:
        reason = err.reason if isinstance(err, BrokenVideoError) else str(err).replace(f"{path}: ", "")
        raise VideoDecodeError(f"{name}: {reason.replace(path, name)}") from None
    return {"name": name, "duration": round(duration, 2), "top": top, "timeline": view,
            "seconds": round(time.perf_counter() - began, 3)}
