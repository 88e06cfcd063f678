"""Long videos for timelines: parts of the synthetic classes one after another, with their truth.

A part of ``seconds`` seconds of class ``label`` is made of :func:`~laps.data.synthetic.synthetic_clip`
clips of ``clip_frames`` frames (the length the demo recipe trains on), each with its own seed, so
every clip shows the change of its class from start to end and the picture jumps between clips.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from laps.data.synthetic import CLASSES, synthetic_clip
from laps.errors import ConfigError


def long_synthetic(parts: Sequence[tuple[int, float]], seed: int = 0, size: int = 32, fps: int = 8,
                   clip_frames: int = 16) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``[(label, seconds), ...]`` -> uint8 frames ``(N, size, size, 3)`` and the true segments
    ``[{"start", "end", "label"}]`` (seconds, class names). A part's length is rounded to whole frames."""
    rng = np.random.default_rng(seed)
    frames, truth, time = [], [], 0.0
    for label, seconds in parts:
        count = round(seconds * fps)
        if count < 1:
            raise ConfigError(f"a part must last at least one frame (1/{fps} s), got {seconds} s")
        clips = [synthetic_clip(label, int(rng.integers(2**31)), clip_frames, size) for _ in range(-(-count // clip_frames))]
        frames.append(np.concatenate(clips)[:count])
        truth.append({"start": time, "end": time + count / fps, "label": CLASSES[label]})
        time += count / fps
    return np.concatenate(frames), truth


def random_parts(seconds: float, seed: int, shortest: float = 6.0, longest: float = 20.0,
                 step: float = 2.0) -> list[tuple[int, float]]:
    """Parts of random classes (never the same twice in a row) and lengths in
    ``[shortest, longest]`` (multiples of ``step``) that fill ``seconds`` (the last part may be shorter)."""
    rng = np.random.default_rng(seed)
    parts: list[tuple[int, float]] = []
    left = seconds
    while left > 0:
        length = min(left, float(rng.choice(np.arange(shortest, longest + step / 2, step))))
        label = int(rng.choice([k for k in range(len(CLASSES)) if not parts or k != parts[-1][0]]))
        parts.append((label, length))
        left -= length
    return parts
