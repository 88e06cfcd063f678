"""Clip transforms: uint8 frames ``(T, H, W, C)`` -> uint8 ``(T, C, H, W)`` crops, and the
normalisation to float that runs where the batch goes (the GPU, in training on one).

Workers ship uint8: four times less data through the workers, the queue and the host-to-device
copy than float32. :class:`Normalize` then turns a batch into model input in one elementwise
kernel on its device.

Every random choice (scale, crop box, flip, RandAugment's ops) is drawn once per clip from the
clip's own generator and applied to all of its frames. Train: short-side scale jitter in ``scale_range`` then an ``img_size`` square
random crop, done as one crop-and-resize of the original frames (the same pixels, less
work); optional horizontal flip and RandAugment. Test: short-side resize, then 1 centre
crop or 3 crops along the long side -> ``(crops, T, C, H, W)``. Both resize with the
``interpolation`` of the model's feed (:func:`laps.models.feed.resolve_feed`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from laps.errors import ConfigError
from laps.models.feed import FALLBACK, norm_presets

Norm = str | tuple[Sequence[float], Sequence[float]]


def norm_stats(norm: Norm) -> tuple[torch.Tensor, torch.Tensor]:
    """A preset name or (mean, std) -> mean, std tensors of shape (C, 1, 1)."""
    if isinstance(norm, str):
        presets = norm_presets()
        if norm not in presets:
            raise ConfigError(f"unknown normalisation {norm!r}; choose one of {', '.join(presets)} or give (mean, std)")
        norm = presets[norm]
    mean, std = (torch.tensor(v, dtype=torch.float32).view(-1, 1, 1) for v in norm)
    return mean, std


def interpolation_mode(name: str) -> v2.InterpolationMode:
    """A resize interpolation by name, as a feed gives it (:class:`~laps.models.feed.Feed`)."""
    try:
        return v2.InterpolationMode(name)
    except ValueError:
        allowed = ", ".join(mode.value for mode in v2.InterpolationMode)
        raise ConfigError(f"unknown interpolation {name!r}; choose one of {allowed}") from None


def as_clip(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(T, H, W, C)`` -> uint8 ``(T, C, H, W)`` view (channels-last memory, no copy)."""
    clip = torch.as_tensor(frames)
    if clip.ndim != 4 or clip.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, C), got {clip.dtype} {tuple(clip.shape)}")
    return clip.permute(0, 3, 1, 2)


class Normalize:
    """uint8 ``(..., C, H, W)`` on any device -> float32 ``(x / 255 - mean) / std`` on that device,
    contiguous, in one elementwise kernel."""

    def __init__(self, norm: Norm = "imagenet") -> None:
        mean, std = norm_stats(norm)
        self.scale, self.shift = 1.0 / (255.0 * std), -mean / std
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.device not in self._on_device:  # once per device: no host-to-device copy per batch
            self._on_device[clip.device] = (self.scale.to(clip.device), self.shift.to(clip.device))
        scale, shift = self._on_device[clip.device]
        return torch.addcmul(shift, clip, scale, out=torch.empty(clip.shape, dtype=torch.float32, device=clip.device))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_on_device": {}}  # loader workers get no device tensors


def default_scale_range(img_size: int) -> tuple[int, int]:
    """The training short-side jitter for a crop of ``img_size``: ``[8/7, 10/7] x img_size``, i.e. the
    usual 256-320 px for 224 px crops, and as much context at any other size."""
    return round(img_size * 8 / 7), round(img_size * 10 / 7)


class TrainTransform:
    """Scale jitter + random crop (+ flip, + RandAugment): uint8 ``(T, H, W, C)`` -> uint8 ``(T, C, S, S)``."""

    def __init__(
        self,
        img_size: int = 224,
        scale_range: tuple[int, int] | None = None,
        *,
        flip: bool = True,
        randaugment: bool = False,
        interpolation: str = FALLBACK.interpolation,
    ) -> None:
        scale_range = scale_range or default_scale_range(img_size)
        low, high = scale_range
        if not img_size <= low <= high:
            raise ConfigError(f"scale_range {scale_range} must satisfy img_size ({img_size}) <= min <= max")
        self.img_size, self.scale_range, self.flip = img_size, (low, high), flip
        self.interpolation = interpolation_mode(interpolation)
        self.randaugment = v2.RandAugment() if randaugment else None

    def crop_box(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, side, side) in the original frame: the crop a random short-side scale would see."""
        short = int(rng.integers(self.scale_range[0], self.scale_range[1] + 1))
        side = max(1, min(height, width, round(self.img_size * min(height, width) / short)))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        return top, left, side, side

    def __call__(self, frames: np.ndarray | torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        clip = as_clip(frames)
        top, left, h, w = self.crop_box(clip.shape[-2], clip.shape[-1], rng)
        clip = F.resized_crop(clip, top, left, h, w, [self.img_size, self.img_size], self.interpolation,
                              antialias=True)
        if self.flip and rng.random() < 0.5:
            clip = clip.flip(-1)
        if self.randaugment is not None:
            clip = self._randaugment(clip, int(rng.integers(2**63)))
        return clip.contiguous()

    def _randaugment(self, clip: torch.Tensor, seed: int) -> torch.Tensor:
        """RandAugment on uint8 ``(T, C, S, S)``: one op draw for the whole clip (the leading dim is a
        batch). torchvision draws from torch's global RNG, so the draw runs on a CPU generator seeded
        from the clip's own ``rng`` and the caller's random state is given back afterwards."""
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return self.randaugment(clip)


class TestTransform:
    """Short-side resize + 1 or 3 crops: uint8 ``(T, H, W, C)`` -> uint8 ``(crops, T, C, S, S)``."""

    __test__ = False  # not a pytest test class

    def __init__(self, img_size: int = 224, num_crops: int = 1, *, short_side: int | None = None,
                 interpolation: str = FALLBACK.interpolation) -> None:
        if num_crops not in (1, 3):
            raise ConfigError(f"test crops must be 1 or 3, got {num_crops}")
        self.img_size, self.num_crops = img_size, num_crops
        self.interpolation = interpolation_mode(interpolation)
        self.short_side = short_side or img_size
        if self.short_side < img_size:
            raise ConfigError(f"test short side {self.short_side} is smaller than the crop {img_size}")

    def __call__(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        clip = F.resize(as_clip(frames), [self.short_side], self.interpolation, antialias=True)
        height, width = clip.shape[-2:]
        size = self.img_size
        if self.num_crops == 1:
            offsets = [((height - size) // 2, (width - size) // 2)]
        elif width >= height:  # three crops along the long side: start, centre, end
            offsets = [((height - size) // 2, left) for left in (0, (width - size) // 2, width - size)]
        else:
            offsets = [(top, (width - size) // 2) for top in (0, (height - size) // 2, height - size)]
        return torch.stack([clip[..., top:top + size, left:left + size] for top, left in offsets])
