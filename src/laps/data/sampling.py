"""Clip samplers: which frame indices of a video make one clip.

* Dense (``num_frames`` x ``rate``): ``num_frames`` frames ``rate`` apart, a window of
  ``(num_frames - 1) * rate + 1`` frames. Training: the window starts anywhere (uniformly);
  test: clip k of K starts at the centre of the k-th of K equal parts of the possible starts
  (one test clip = the centred window).
* Segment (TSN): the video is cut into ``num_frames`` equal segments, one frame each.
  Training: a random frame of every segment; test clip k of K: the frame at fraction
  ``(k + 0.5) / K`` of every segment (one test clip = the segment centres).

Short videos never fail: dense indices past the end are clamped to the last frame, and
segments shorter than one frame repeat frames.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from laps.errors import ConfigError, DataError
from laps.samplings import check_sampling


def _check(num_video_frames: int, num_frames: int, clip_index: int, num_clips: int) -> None:
    if num_video_frames < 1:
        raise DataError(f"cannot sample a clip from a video with {num_video_frames} frames")
    if num_frames < 1:
        raise ConfigError(f"num_frames must be at least 1, got {num_frames}")
    if not 0 <= clip_index < num_clips:
        raise ConfigError(f"clip_index must lie in [0, {num_clips}), got {clip_index}")


def _offsets(count: int, train: bool, rng: np.random.Generator | None, clip_index: int, num_clips: int) -> np.ndarray:
    """Positions in [0, 1): random per draw when training, ``(clip_index + 0.5) / num_clips`` at test."""
    if train:
        return (rng or np.random.default_rng()).random(count)
    return np.full(count, (clip_index + 0.5) / num_clips)


def dense_indices(
    num_video_frames: int,
    num_frames: int,
    rate: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Indices of a dense clip -> int64 ``(num_frames,)``, ``rate`` apart, clamped to the video."""
    _check(num_video_frames, num_frames, clip_index, num_clips)
    if rate < 1:
        raise ConfigError(f"sampling rate must be at least 1, got {rate}")
    starts = max(num_video_frames - (num_frames - 1) * rate, 1)  # number of possible window starts
    start = int(_offsets(1, train, rng, clip_index, num_clips)[0] * starts)
    return np.minimum(start + rate * np.arange(num_frames), num_video_frames - 1)


def segment_indices(
    num_video_frames: int,
    num_frames: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Indices of a TSN clip -> int64 ``(num_frames,)``, one frame from each of ``num_frames`` segments."""
    _check(num_video_frames, num_frames, clip_index, num_clips)
    length = num_video_frames / num_frames
    positions = (np.arange(num_frames) + _offsets(num_frames, train, rng, clip_index, num_clips)) * length
    return np.minimum(positions.astype(np.int64), num_video_frames - 1)


def sample_indices(
    sampling: str,
    num_video_frames: int,
    num_frames: int,
    rate: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    clip_index: int = 0,
    num_clips: int = 1,
) -> np.ndarray:
    """Dispatch on ``sampling`` ("dense" or "segment"; ``rate`` is unused by "segment") -> ``(num_frames,)``."""
    kwargs = dict(train=train, rng=rng, clip_index=clip_index, num_clips=num_clips)
    if check_sampling(sampling) == "dense":
        return dense_indices(num_video_frames, num_frames, rate, **kwargs)
    return segment_indices(num_video_frames, num_frames, **kwargs)


def parse_views(spec: str | Sequence[int]) -> tuple[int, int]:
    """Test views ``"10x3"`` or ``(10, 3)`` -> (temporal clips, spatial crops); crops must be 1 or 3."""
    if isinstance(spec, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", spec)
        if not match:
            raise ConfigError(f"test views must look like '10x3' (clips x crops), got {spec!r}")
        spec = (int(match[1]), int(match[2]))
    if len(spec) != 2:
        raise ConfigError(f"test views need two numbers (clips, crops), got {spec!r}")
    temporal, spatial = int(spec[0]), int(spec[1])
    if temporal < 1 or spatial not in (1, 3):
        raise ConfigError(f"test views need at least 1 clip and 1 or 3 crops, got {temporal}x{spatial}")
    return temporal, spatial
