"""Label a long video over time: clips slid over a stream, per-class scores, merged segments.

The video is decoded once, front to back, and never held in memory. Window ``k`` covers
``[k * stride, k * stride + window)`` seconds. Its ``T`` frames are the first frames at or after the
centres of ``T`` equal parts of it, so windows that overlap share decoded frames. A window is
resized and cropped as in evaluation (one centre crop). Once its last frame has arrived, it joins a
batch for the model. What stays in memory are the windows still open (about ``window / stride``
of them, ``T`` small crops each), a bounded set of thumbnails, and the scores: ``(windows, K)``
float16, 29 MB for ten hours at one window a second and 400 classes.

Segments come from the scores by :mod:`laps.serve.segmenting` (smoothing, then a Viterbi pass
with a switch penalty and a ``background`` state). Window ``k`` stands for the ``stride`` seconds
around its centre (the first window from the video's start, the last to its end), so a segment
boundary is placed to within one stride.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from laps.atomic import atomic_path, write_text_atomic
from laps.data.decoding import BrokenVideoError, av_reason, open_container, truncation, video_stream
from laps.data.mp4_boxes import StreamHead, index_after_frames
from laps.data.reformat import to_rgb
from laps.data.transforms import TestTransform
from laps.errors import ConfigError, VideoDecodeError
from laps.models.feed import FALLBACK
from laps.serve.segmenting import (
    BACKGROUND_SCORE,
    SMOOTH,
    SWITCH,
    boundary_errors,
    segments_from_states,
    smooth_scores,
    viterbi,
)

#: thumbnails kept for the picture (halved by dropping every other when full)
THUMBNAILS = 24


@dataclass
class _Window:
    index: int
    start: float
    times: list[float]  # the T sample times
    crops: list[torch.Tensor | None] = field(default_factory=list)

    @property
    def filled(self) -> int:
        return sum(c is not None for c in self.crops)


@dataclass
class Timeline:
    """Window starts ``(W,)`` and ends (seconds), scores ``(W, K)``, the class names, and thumbnails
    ``[(time, uint8 (h, w, 3))]``; ``duration`` is the last decoded frame's time."""

    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    classes: list[str]
    stride: float
    duration: float
    thumbnails: list[tuple[float, np.ndarray]]


def open_stream(source: str):
    """The open PyAV container of a path, a URL PyAV can read, or ``-`` for standard input; what is
    not a video (:func:`~laps.data.decoding.video_stream`) raises :class:`BrokenVideoError`, and so
    does an mp4 piped with its index after its frames, which no stream can go back to."""
    stdin = source == "-"
    name = "standard input" if stdin else source
    piped = StreamHead(sys.stdin.buffer, name) if stdin and not sys.stdin.buffer.seekable() else None
    container = open_container(piped or (sys.stdin.buffer if stdin else source), name)
    try:
        video_stream(container, name)
        if piped is not None and index_after_frames(bytes(piped.head)):
            raise BrokenVideoError(name, "an mp4 whose index (moov box) comes after its frames, so it cannot "
                                                   "be read from a pipe: pass the file's path, or re-encode it with "
                                                   "ffmpeg -movflags +faststart")
    except BrokenVideoError:
        container.close()
        raise
    return container


def _frames(container) -> Iterator[tuple[float, np.ndarray]]:
    """(time in seconds, RGB frame) in presentation order. A file that holds fewer frames than its
    index lists is refused once its frames are read, as every reader of videos refuses it."""
    stream = video_stream(container, container.name)
    stream.thread_type = "AUTO"
    packets = 0
    try:
        for packet in container.demux(stream):
            packets += packet.size > 0
            for frame in packet.decode():
                if frame.time is not None:
                    yield float(frame.time), to_rgb(frame)
    except av.error.FFmpegError as err:
        raise BrokenVideoError(container.name, f"corrupt video data after some frames ({av_reason(err)})") from None
    if reason := truncation(stream, packets):
        raise BrokenVideoError(container.name, reason)


def container_duration(container) -> float | None:
    """Seconds of video an open container says it holds (its video stream's, else the file's); ``None`` if unknown."""
    stream = container.streams.video[0] if container.streams.video else None
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else None


def sliding_windows(frames: Iterable[tuple[float, np.ndarray]], *, num_frames: int, window: float, stride: float,
                    crop: Callable[[np.ndarray], torch.Tensor]) -> Iterator[tuple[float, torch.Tensor]]:
    """Window starts (seconds) and clips ``(T, C, h, w)`` from ``(time, RGB frame (H, W, 3))`` pairs
    in presentation order, each frame taken by ``crop`` (``(H, W, 3) -> (C, h, w)``, run at most once
    a frame): window ``k`` starts at ``k * stride``, in order, and is yielded once its last frame
    has arrived. A stream shorter than one window gives one window, its missing frames repeating its
    last one."""
    if window <= 0 or stride <= 0:
        raise ConfigError(f"--window and --stride must be > 0 seconds, got {window} and {stride}")
    parts = [(j + 0.5) * window / num_frames for j in range(num_frames)]
    open_windows: deque[_Window] = deque()
    next_index, emitted = 0, False
    for time, rgb in frames:
        cropped = None
        while next_index * stride <= time:  # windows that have begun
            start = next_index * stride
            open_windows.append(_Window(next_index, start, [start + p for p in parts], [None] * num_frames))
            next_index += 1
        for w in open_windows:
            for j, t in enumerate(w.times):
                if w.crops[j] is None and t <= time:
                    cropped = crop(rgb) if cropped is None else cropped
                    w.crops[j] = cropped
        while open_windows and open_windows[0].filled == num_frames:
            done = open_windows.popleft()
            emitted = True
            yield done.start, torch.stack(done.crops)
    if not emitted and open_windows and open_windows[0].filled:  # shorter than one window: pad
        first = open_windows[0]
        crops = [c if c is not None else next(x for x in reversed(first.crops) if x is not None) for c in first.crops]
        yield first.start, torch.stack(crops)


def frame_crop(img_size: int, interpolation: str = FALLBACK.interpolation) -> Callable[[np.ndarray], torch.Tensor]:
    """One frame ``(H, W, 3)`` -> its evaluation crop ``(C, img_size, img_size)`` uint8 (short-side
    resize with ``interpolation``, one centre crop)."""
    transform = TestTransform(img_size, interpolation=interpolation)
    return lambda rgb: transform(rgb[None])[0, 0]


def stream_windows(container, *, num_frames: int, img_size: int, window: float, stride: float,
                   interpolation: str = FALLBACK.interpolation) -> Iterator[tuple[float, torch.Tensor]]:
    """:func:`sliding_windows` of the video of an open PyAV ``container``, cropped as :func:`slide` crops."""
    return sliding_windows(_frames(container), num_frames=num_frames, window=window, stride=stride,
                           crop=frame_crop(img_size, interpolation))


def slide(model: nn.Module, container, classes: list[str], *, num_frames: int, img_size: int,
          normalize: Callable[[torch.Tensor], torch.Tensor], window: float, stride: float, batch_size: int = 8,
          progress: bool = True, interpolation: str = FALLBACK.interpolation) -> Timeline:
    """Slide ``window``-second clips every ``stride`` seconds over the video of ``container``
    (an open PyAV container, its windows as :func:`sliding_windows` takes them) and score each with
    ``model`` ``(B, T, C, H, W) -> logits``; frames are resized with ``interpolation``."""
    crop = frame_crop(img_size, interpolation)
    starts, scores, thumbnails = [], [], []
    thumb_gap, last_time = stride, 0.0
    model.eval()

    def run_batch(batch: list[tuple[float, torch.Tensor]]) -> None:
        clips = torch.stack([clip for _, clip in batch])
        with torch.no_grad():
            probs = model(normalize(clips)).float().softmax(-1)
        scores.extend(probs.numpy().astype(np.float16))
        starts.extend(start for start, _ in batch)

    total = container_duration(container)
    bar = tqdm(total=round(total, 1) if total else None, unit="s", desc="timeline", disable=not progress,
               leave=False, bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s video [{elapsed}<{remaining}]")

    def watched() -> Iterator[tuple[float, np.ndarray]]:
        """The frames, keeping thumbnails and the progress bar on the way."""
        nonlocal thumbnails, thumb_gap, last_time
        for time, rgb in _frames(container):
            yield time, rgb
            if not thumbnails or time >= thumbnails[-1][0] + thumb_gap:
                thumbnails.append((time, crop(rgb).permute(1, 2, 0).numpy()))
                if len(thumbnails) > THUMBNAILS:  # keep them spread over the whole video, however long
                    thumbnails, thumb_gap = thumbnails[::2], thumb_gap * 2
            bar.update(round(time - last_time, 3))
            last_time = time

    ready: list[tuple[float, torch.Tensor]] = []
    for item in sliding_windows(watched(), num_frames=num_frames, window=window, stride=stride, crop=crop):
        ready.append(item)
        if len(ready) == batch_size:
            run_batch(ready)
            ready = []
    bar.close()
    if ready:
        run_batch(ready)
    if not starts:
        raise VideoDecodeError(f"{container.name}: no frame could be decoded")
    starts_a = np.asarray(starts, dtype=np.float64)
    return Timeline(starts_a, starts_a + window, np.stack(scores), classes, stride, last_time, thumbnails)


def segments(timeline: Timeline, smooth: int = SMOOTH, switch: float = SWITCH,
             background: float = BACKGROUND_SCORE) -> list[dict[str, Any]]:
    """``[{"start", "end", "label", "score"}]`` (seconds) from the timeline's scores: smoothed over
    ``smooth`` windows, decoded by :func:`~laps.serve.segmenting.viterbi` (``switch`` nats per
    change of label; ``background`` where no class's score reaches ``background``)."""
    scores = smooth_scores(timeline.scores, smooth)
    states = viterbi(scores, switch, background)
    return segments_from_states(states, scores, timeline.classes, timeline.starts, timeline.ends, timeline.stride,
                                timeline.duration)


def write_timeline(timeline: Timeline, found: list[dict[str, Any]], out_dir: str | Path, *, smooth: int = SMOOTH,
                   background: float = BACKGROUND_SCORE, truth: list[dict[str, Any]] | None = None) -> None:
    """``timeline.json`` (segments, the decoding's settings, per-window scores and, given ``truth``,
    the boundary errors), ``timeline.csv`` (one row per window: start, end, a score per class) and
    ``timeline.png`` (thumbnails, smoothed and raw scores, segments, truth), each written atomically."""
    from laps.serve.timeline_plot import plot_timeline

    out = Path(out_dir)
    with atomic_path(out / "timeline.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start", "end", *timeline.classes])
        for start, end, row in zip(timeline.starts, timeline.ends, timeline.scores):
            writer.writerow([f"{start:.3f}", f"{end:.3f}", *(f"{float(p):.4f}" for p in row)])
    with atomic_path(out / "timeline.png") as tmp:
        plot_timeline(timeline.starts, timeline.ends, timeline.scores, smooth_scores(timeline.scores, smooth),
                      timeline.classes, found, timeline.duration, timeline.thumbnails, tmp, background, truth)
    report: dict[str, Any] = {"duration": timeline.duration, "stride": timeline.stride, "classes": timeline.classes,
                              "segments": found}
    if truth:
        errors = [round(float(e), 3) if np.isfinite(e) else None for e in boundary_errors(found, truth)]
        report["truth"] = {"segments": truth, "boundary_errors": errors}
    report["scores"] = {"start": timeline.starts.round(3).tolist(), "end": timeline.ends.round(3).tolist(),
                        "probs": timeline.scores.astype(float).round(4).tolist()}
    write_text_atomic(out / "timeline.json", json.dumps(report) + "\n")
