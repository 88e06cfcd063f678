"""``VideoConfig``: a video model's identity, what ``model.video_cfg`` holds and ``config.json`` stores.

In the spirit of timm's ``pretrained_cfg``, one declared record says what a
:class:`~laps.models.video.VideoClassifier` is and how to feed it:

- the architecture: the timm ``backbone`` name and its ``timm_kwargs``, the ``temporal`` variant,
  ``num_frames``, ``levels``, ``fold_div``, ``num_classes``;
- how to feed it: clips of ``num_frames`` frames taken every ``sampling_rate`` frames
  (``sampling``: ``"dense"`` or ``"segment"``), resized with ``interpolation`` and cropped to
  ``img_size``, normalised with ``mean`` and ``std``; ``classes`` name its outputs;
- its head: ``"linear"`` (timm's classifier) or ``"text"`` (a :class:`~laps.models.text_head.TextHead`
  made from class prompts, over an image model built with ``num_classes=projection``).

``create_model`` and ``lapsify`` build it, the model gets it at construction, ``save_pretrained``
writes it (:meth:`VideoConfig.to_dict`) and ``laps.from_pretrained`` reads it back
(:meth:`VideoConfig.from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from laps.errors import CheckpointError, ConfigError
from laps.samplings import check_sampling
from laps.version import __version__

HEADS = ("linear", "text")
#: the key of ``config.json`` that names the laps version that wrote it (not part of the identity)
VERSION_KEY = "laps_version"


@dataclass(frozen=True)
class VideoConfig:
    """What a video model is and how to feed it (see the module). ``backbone`` is ``None`` for a
    model :func:`~laps.models.factory.lapsify` built from a timm model laps cannot name: it runs,
    but cannot be saved to be rebuilt. ``classes=None`` names no classes (see :attr:`class_names`);
    ``sampling_rate=None`` records no sampling rate. ``projection`` is set for a ``"text"`` head only."""

    backbone: str | None
    temporal: str
    num_frames: int
    num_classes: int
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    levels: tuple[int | None, ...] | None = None
    fold_div: int = 4
    timm_kwargs: dict[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    sampling_rate: int | None = None
    sampling: str = "dense"
    head: str = "linear"
    projection: int | None = None

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        for name in ("levels", "classes"):
            value = getattr(self, name)
            object.__setattr__(self, name, None if value is None else tuple(value))
        object.__setattr__(self, "timm_kwargs", dict(self.timm_kwargs))
        if self.classes is not None and len(self.classes) != self.num_classes:
            raise ConfigError(f"{len(self.classes)} class names for a model with {self.num_classes} classes")
        if len(self.mean) != len(self.std):
            raise ConfigError(f"mean has {len(self.mean)} values but std has {len(self.std)}; give one per channel")
        check_sampling(self.sampling)
        if self.head not in HEADS:
            raise ConfigError(f"unknown head {self.head!r}; choose one of {', '.join(HEADS)}")
        if (self.head == "text") != (self.projection is not None):
            raise ConfigError("a text head needs its projection width (0 for none), and only a text head has one")

    @property
    def class_names(self) -> list[str]:
        """:attr:`classes`, or ``class_0 .. class_{K-1}`` when it names none."""
        return list(self.classes) if self.classes is not None else [f"class_{i}" for i in range(self.num_classes)]

    def updated(self, **given: Any) -> VideoConfig:
        """A copy in which each value of ``given`` that is not ``None`` replaces the current one."""
        return dataclasses.replace(self, **{key: value for key, value in given.items() if value is not None})

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content: every field (sequences as lists) and the laps version."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        plain = {key: list(value) if isinstance(value, tuple) else value for key, value in values.items()}
        return {VERSION_KEY: __version__, **plain, "timm_kwargs": dict(self.timm_kwargs)}

    @classmethod
    def from_dict(cls, raw: Any, source: object) -> VideoConfig:
        """The config a ``config.json`` (``raw``, read from ``source``) holds; a :class:`CheckpointError`
        naming ``source`` if it is not one."""
        names = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if not isinstance(raw, dict) or any(key not in raw for key in required):
            raise CheckpointError(f"{source} lacks some of {', '.join(required)}; was it written by save_pretrained?")
        unknown = sorted(set(raw) - names - {VERSION_KEY})
        if unknown:
            raise CheckpointError(f"{source} has keys a laps model config does not know: {', '.join(unknown)}; "
                                  "was it written by a newer laps? upgrade laps")
        try:
            return cls(**{key: value for key, value in raw.items() if key in names})
        except (ConfigError, TypeError, ValueError) as err:
            raise CheckpointError(f"{source} is not a valid laps model config: {err}") from None
