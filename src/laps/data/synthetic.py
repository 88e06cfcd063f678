"""A synthetic temporal dataset: ten classes in five time-reversed pairs, as real H.264 mp4.

Every video shows a random plaid (a sum of plane waves) that changes over time in one of five ways,
each with its time-reversed twin: drifting left / right, drifting up / down, fading in / out,
coming into focus / blurring, brightening / darkening. A clip of the second class of a pair is
exactly a clip of the first class played backwards
(``synthetic_clip(2k + 1, s) == synthetic_clip(2k, s)[::-1]``), so both classes see the same
distribution of single frames: no single frame, and no order-blind model, can tell them apart,
while a model that sees time can. Nuisances: the plaid's waves (orientation, wavelength, phase,
tint), its mean level, colour cast and contrast, and the speed of the change. Everything is drawn
from the per-video seed.

Two choices make the classes learnable by a small transformer trained from random weights in CPU
minutes (docs/decisions.md has the measurements): every class changes every patch of the frame, and
the plaid lives mostly in luminance, because H.264's yuv420p halves chroma resolution and
quantises it coarsely, which turns fine colour detail into frame-to-frame noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from laps.data.annotations import save_classes
from laps.data.encoding import write_video
from laps.errors import ConfigError

CLASSES = (
    "drifting_left", "drifting_right",
    "drifting_up", "drifting_down",
    "fading_in", "fading_out",
    "focusing", "blurring",
    "brightening", "darkening",
)

_WAVES = 5
_GREY = np.ones(3) / np.sqrt(3)


def _chroma(rng: np.random.Generator, count: int) -> np.ndarray:
    """Random unit colour directions orthogonal to grey: (count, 3)."""
    vectors = rng.normal(size=(count, 3))
    vectors -= np.outer(vectors @ _GREY, _GREY)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_clip(label: int, seed: int, num_frames: int = 16, size: int = 64) -> np.ndarray:
    """One clip of class ``label`` -> uint8 (T, size, size, 3); odd labels are their pair's clip reversed."""
    if not 0 <= label < len(CLASSES):
        raise ConfigError(f"synthetic label must lie in [0, {len(CLASSES)}), got {label}")
    rng = np.random.default_rng(seed)
    angles = rng.uniform(0, np.pi, _WAVES)
    wavenumbers = 2 * np.pi / (rng.uniform(0.22, 0.5, _WAVES) * size)
    phases = rng.uniform(0, 2 * np.pi, _WAVES)
    tints = 0.8 * rng.choice((-1.0, 1.0), size=(_WAVES, 1)) * _GREY + 0.6 * _chroma(rng, _WAVES)  # mostly luminance
    mean = rng.uniform(0.4, 0.6) + rng.uniform(0.06, 0.1) * _chroma(rng, 1)[0]  # grey level plus a colour cast
    contrast = rng.uniform(0.15, 0.3)
    drift = rng.uniform(0.16, 0.31) * size  # pixels over the whole clip
    blur = rng.uniform(0.06, 0.094) * size  # Gaussian sigma, pixels, at the blurred end
    exposure = rng.uniform(0.25, 0.4)  # change of the mean level over the whole clip
    y, x = np.mgrid[0:size, 0:size] + 0.5
    pair = label // 2
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t, progress in enumerate(np.linspace(0, 1, num_frames)):
        shift_x = drift * progress if pair == 0 else 0.0  # sampling further right: the plaid moves left
        shift_y = drift * progress if pair == 1 else 0.0
        gains = np.ones(_WAVES)
        if pair == 2:
            gains *= progress
        elif pair == 3:  # a Gaussian blur scales a wave of wavenumber k by exp(-(sigma k)^2 / 2)
            gains = np.exp(-0.5 * (blur * (1 - progress) * wavenumbers) ** 2)
        level = mean + (progress - 0.5) * exposure if pair == 4 else mean
        along = (x + shift_x)[..., None] * np.cos(angles) + (y + shift_y)[..., None] * np.sin(angles)
        waves = np.sin(wavenumbers * along + phases) * gains  # (size, size, K)
        colour = (waves[..., None] * tints).sum(-2)  # waves @ tints without BLAS, whose kernels vary by process
        frames[t] = np.round(255 * np.clip(level + contrast * colour, 0, 1))
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
