"""How a model is fed: one resolver for the mean, std, resize interpolation, input size, frame
sampling and clip length, in the spirit of timm's ``resolve_data_config``.

:func:`resolve_feed` takes each value from the first source that has it, in one order:

1. the explicit arguments (a command's flags, a training config's ``data`` and ``model`` keys);
2. the model's ``video_cfg`` (:class:`~laps.models.video_config.VideoConfig`, what ``config.json`` stores);
3. the weights' ``pretrained_cfg`` (timm's record of how the 2D weights were trained);
4. :data:`FALLBACK`, timm's defaults (ImageNet statistics, bicubic, 224 px) and laps's clip.

``create_model``, ``lapsify``, training (datasets and checkpoints), evaluation, prediction,
timelines, the app and features all feed a model through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from laps.errors import ConfigError
from laps.models import registry
from laps.samplings import DEFAULT_SAMPLING_RATE, check_sampling

#: normalisation presets of every backbone, by name: (mean, std) of 0-1 RGB
NORMS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "imagenet": (tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}


def norm_presets() -> dict[str, tuple[tuple[float, ...], tuple[float, ...]]]:
    """:data:`NORMS` and the presets of the family records (``data.norm`` takes their names)."""
    return {**NORMS, **{name: norm for family in registry.FAMILIES for name, norm in family.norms.items()}}


@dataclass(frozen=True)
class Feed:
    """How clips are made for a model: frames resized with ``interpolation`` and cropped to
    ``input_size`` px, ``num_frames`` of them taken by ``sampling`` (every ``sampling_rate`` frames
    when dense), normalised with ``mean`` and ``std`` (one value per channel, 0-1 RGB)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    input_size: int
    sampling: str
    num_frames: int
    sampling_rate: int = DEFAULT_SAMPLING_RATE

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if len(self.mean) != len(self.std):
            raise ConfigError(f"mean has {len(self.mean)} values but std has {len(self.std)}; give one per channel")
        check_sampling(self.sampling)

    @property
    def norm(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(mean, std)``, as :class:`~laps.data.transforms.Normalize` takes it."""
        return self.mean, self.std


#: the last source of :func:`resolve_feed`
FALLBACK = Feed(mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, interpolation="bicubic", input_size=224,
                sampling="dense", num_frames=8, sampling_rate=DEFAULT_SAMPLING_RATE)
FIELDS = tuple(f.name for f in dataclasses.fields(Feed))


def _from_video_cfg(video_cfg: Any) -> dict[str, Any]:
    if video_cfg is None:
        return {}
    return {"mean": video_cfg.mean, "std": video_cfg.std, "interpolation": video_cfg.interpolation,
            "input_size": video_cfg.img_size, "sampling": video_cfg.sampling, "num_frames": video_cfg.num_frames,
            "sampling_rate": video_cfg.sampling_rate}


def _from_pretrained_cfg(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    cfg = cfg if isinstance(cfg, Mapping) else dataclasses.asdict(cfg)
    size = cfg.get("input_size")
    return {"mean": cfg.get("mean"), "std": cfg.get("std"), "interpolation": cfg.get("interpolation") or None,
            "input_size": size[-1] if size else None}


def resolve_feed(model: Any = None, *, video_cfg: Any = None, pretrained_cfg: Any = None, **explicit: Any) -> Feed:
    """The :class:`Feed` of a model (see the module for the order of the sources).

    ``model``: a :class:`~laps.models.video.VideoClassifier` (its ``video_cfg`` and its backbone's
    ``pretrained_cfg``) or a timm image model (its ``pretrained_cfg``); ``video_cfg`` and
    ``pretrained_cfg`` given on their own take the place of the model's. ``explicit``: any
    :class:`Feed` field; a ``None`` value is not given.
    """
    unknown = sorted(set(explicit) - set(FIELDS))
    if unknown:
        raise TypeError(f"resolve_feed() got unknown fields {unknown}; it takes {', '.join(FIELDS)}")
    if model is not None:
        video_cfg = video_cfg or getattr(model, "video_cfg", None)
        pretrained_cfg = pretrained_cfg or getattr(getattr(model, "backbone", model), "pretrained_cfg", None)
    sources = (explicit, _from_video_cfg(video_cfg), _from_pretrained_cfg(pretrained_cfg), dataclasses.asdict(FALLBACK))
    return Feed(**{name: next(s[name] for s in sources if s.get(name) is not None) for name in FIELDS})
