"""A synthetic temporal dataset: ten classes in five time-reversed pairs, as real H.264 mp4.

Pairs (forward class, reversed class): moving left / right, moving up / down, rotating
clockwise / anticlockwise, growing / shrinking, appearing / vanishing. A clip of the
second class of a pair is exactly a clip of the first class played backwards
(``synthetic_clip(2k + 1, s) == synthetic_clip(2k, s)[::-1]``), so both classes see the same
distribution of single frames: no single frame, and no order-blind model, can tell them
apart, while a model that sees time can. Nuisances: shape, size, colour, textured
background, speed and start position. Everything is drawn from the per-video seed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from laps.data.annotations import save_classes
from laps.data.encoding import write_video
from laps.errors import ConfigError

CLASSES = (
    "moving_left", "moving_right",
    "moving_up", "moving_down",
    "rotating_clockwise", "rotating_anticlockwise",
    "growing", "shrinking",
    "appearing", "vanishing",
)

# Unit polygons (x right, y down), no rotational symmetry below 180 degrees except the square.
_POLYGONS = {
    "square": np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * 0.75,
    "triangle": np.array([[1.0, 0.0], [-0.6, 0.7], [-0.6, -0.7]]),
    "bar": np.array([[1.0, 0.4], [-1.0, 0.4], [-1.0, -0.4], [1.0, -0.4]]),
}
_SHAPES = ("circle", *_POLYGONS)
# A rotating shape must look different turned either way by one sampled step: no circle, and no
# square (turned 45 degrees clockwise it equals turned 45 degrees anticlockwise).
_ROTATING = ("triangle", "bar")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Static low-contrast textured background: float (size, size, 3) in [0, 1]; blocky noise or stripes."""
    base = rng.uniform(0.2, 0.8, 3)
    amplitude = rng.uniform(0.015, 0.06)  # low contrast: the moving object, not the texture, carries the label
    if rng.random() < 0.5:
        block = int(rng.integers(4, 9))
        cells = rng.uniform(-1, 1, (size // block + 1, size // block + 1))
        texture = np.kron(cells, np.ones((block, block)))[:size, :size]
    else:
        y, x = np.mgrid[0:size, 0:size] / size
        angle, cycles = rng.uniform(0, np.pi), rng.uniform(2, 6)
        texture = np.sin(2 * np.pi * cycles * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    return np.clip(base + amplitude * texture[..., None], 0, 1)


def _mask(shape: str, size: int, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    """Anti-aliased coverage (size, size) in [0, 1] of a shape centred at (cx, cy), rotated clockwise by angle."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = x - cx, y - cy
    if shape == "circle":
        distance = np.hypot(dx, dy) - radius
    else:
        cos, sin = np.cos(angle), np.sin(angle)
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # pixel offset in the shape's own frame
        vertices = _POLYGONS[shape] * radius
        edges = np.roll(vertices, -1, axis=0) - vertices
        normals = np.stack([edges[:, 1], -edges[:, 0]], 1)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        normals *= np.sign(np.sum(normals * vertices, axis=1, keepdims=True))  # point outwards
        offsets = np.sum(normals * vertices, axis=1)
        distance = np.max(u[..., None] * normals[:, 0] + v[..., None] * normals[:, 1] - offsets, axis=-1)
    return np.clip(0.5 - distance, 0, 1)


def _forward_motion(pair: int, rng: np.random.Generator, progress: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per-frame cx, cy, radius, angle, alpha (each (T,)) of the first class of ``pair``."""
    ones = np.ones_like(progress)
    radius = rng.uniform(0.1, 0.18) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    motion = dict(cx=cx * ones, cy=cy * ones, radius=radius * ones, angle=rng.uniform(0, 2 * np.pi) * ones, alpha=ones)
    if pair in (0, 1):  # moving left / moving up: travel 40-60% of the frame
        distance = rng.uniform(0.4, 0.6) * size
        start = rng.uniform(radius + distance, size - radius)
        motion["cx" if pair == 0 else "cy"] = start - distance * progress
    elif pair == 2:  # rotating clockwise by 60-120 degrees, a large shape near the centre
        radius = rng.uniform(0.25, 0.35) * size
        motion["radius"] = radius * ones
        motion["cx"], motion["cy"] = (size / 2 + rng.uniform(-0.1, 0.1, 2) * size)[:, None] * ones
        motion["angle"] = motion["angle"] + np.deg2rad(rng.uniform(60, 120)) * progress
    elif pair == 3:  # growing from 5-10% to 28-38% of the frame
        small, large = rng.uniform(0.05, 0.1) * size, rng.uniform(0.28, 0.38) * size
        motion["radius"] = small + (large - small) * progress
        motion["cx"], motion["cy"] = rng.uniform(large, size - large, 2)[:, None] * ones
    else:  # appearing: fade in from nothing over 40-70% of the clip
        begin, length = rng.uniform(0, 0.3), rng.uniform(0.4, 0.7)
        motion["alpha"] = np.clip((progress - begin) / length, 0, 1)
    return motion


def synthetic_clip(label: int, seed: int, num_frames: int = 16, size: int = 64) -> np.ndarray:
    """One clip of class ``label`` -> uint8 (T, size, size, 3); odd labels are their pair's clip reversed."""
    if not 0 <= label < len(CLASSES):
        raise ConfigError(f"synthetic label must lie in [0, {len(CLASSES)}), got {label}")
    rng = np.random.default_rng(seed)
    background = _background(rng, size)
    bright = background.mean(axis=(0, 1)) > 0.5  # contrast in every channel
    colour = np.where(bright, rng.uniform(0.0, 0.3, 3), rng.uniform(0.7, 1.0, 3))
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))] if label // 2 != 2 else _ROTATING[int(rng.integers(len(_ROTATING)))]
    motion = _forward_motion(label // 2, rng, np.linspace(0, 1, num_frames), size)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        cover = motion["alpha"][t] * _mask(shape, size, motion["cx"][t], motion["cy"][t], motion["radius"][t],
                                           motion["angle"][t])[..., None]
        frames[t] = np.round(255 * (background * (1 - cover) + colour * cover))
    return frames if label % 2 == 0 else frames[::-1].copy()


def video_seed(seed: int, label: int, index: int) -> int:
    """The per-video seed of video ``index`` of class ``label`` in a dataset made with ``seed``."""
    return int(np.random.SeedSequence([seed, label, index]).generate_state(1)[0])


def make_synthetic(
    out_dir: str | os.PathLike,
    videos_per_class: int = 40,
    seed: int = 0,
    num_frames: int = 16,
    size: int = 64,
    fps: int = 8,
    val_fraction: float = 0.2,
) -> Path:
    """Write the dataset under ``out_dir`` -> ``out_dir``.

    Layout: ``videos/<class>/<class>_<i>.mp4`` (H.264, crf 12), ``train.txt`` and ``val.txt``
    (``videos/... label`` lines, relative to ``out_dir``; the last ``val_fraction`` of every
    class goes to val) and ``classes.json``.
    """
    if videos_per_class < 2:
        raise ConfigError(f"videos_per_class must be at least 2 (one train, one val), got {videos_per_class}")
    if size % 2 or size < 16:
        raise ConfigError(f"size must be even and at least 16 (H.264 yuv420p), got {size}")
    out = Path(out_dir)
    num_val = min(max(1, round(val_fraction * videos_per_class)), videos_per_class - 1)
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for label, name in enumerate(CLASSES):
        (out / "videos" / name).mkdir(parents=True, exist_ok=True)
        for i in range(videos_per_class):
            rel = f"videos/{name}/{name}_{i:04d}.mp4"
            write_video(out / rel, synthetic_clip(label, video_seed(seed, label, i), num_frames, size), fps, crf=12)
            lines["val" if i >= videos_per_class - num_val else "train"].append(f"{rel} {label}\n")
    for split, split_lines in lines.items():
        (out / f"{split}.txt").write_text("".join(split_lines))
    save_classes(out / "classes.json", CLASSES)
    return out
