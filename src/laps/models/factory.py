"""``create_model``, ``lapsify`` and ``list_models``: the public way to build video models."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import timm
from torch import nn

from laps.errors import UnsupportedBackboneError
from laps.models.feed import Feed, resolve_feed
from laps.models.pretrained import check_hub_weights, load_pretrained_file, weights_cfg, weights_name
from laps.models.registry import family_models, family_of, refusal, refused_models
from laps.models.video import VideoClassifier
from laps.models.video_config import VideoConfig


def list_models(pattern: str = "*") -> list[str]:
    """timm backbones laps converts, filtered by a glob ``pattern``: every model of the families of
    :mod:`laps.models.registry`, less the models they refuse."""
    refused = refused_models()
    return sorted(n for n in family_models() if fnmatch.fnmatch(n, pattern) and n not in refused)


def image_size(model_2d: nn.Module, img_size: int | tuple[int, int] | None = None) -> int | None:
    """The input size (width) of a timm image model: ``img_size`` if it was built with one, else the
    size its family says it takes; ``None`` for a model built for any size (its feed decides)."""
    size = img_size or family_of(model_2d).input_size(model_2d)
    return None if size is None else int(size if isinstance(size, int) else size[-1])


def _video_config(backbone: str | None, model_2d: nn.Module, feed: Feed, temporal: str, levels, fold_div: int,
                  timm_kwargs: dict) -> VideoConfig:
    return VideoConfig(backbone=backbone, temporal=temporal, num_frames=feed.num_frames,
                       num_classes=model_2d.num_classes, img_size=feed.input_size, mean=feed.mean, std=feed.std,
                       interpolation=feed.interpolation, levels=levels, fold_div=fold_div, timm_kwargs=timm_kwargs)


def lapsify(
    model_2d: nn.Module,
    num_frames: int = 8,
    temporal: str = "laps",
    levels: list[int | None] | None = None,
    fold_div: int = 4,
) -> VideoClassifier:
    """Turn a timm image model into a video classifier, converting its attention in place.

    The returned :class:`VideoClassifier` takes ``(B, T, C, H, W)`` clips with ``T = num_frames``
    and shares every parameter with ``model_2d`` (its ``backbone``). Its ``video_cfg`` is fed as
    ``model_2d.pretrained_cfg`` says (:func:`~laps.models.feed.resolve_feed`); it names no backbone
    (laps cannot tell the timm arguments ``model_2d`` was built with), so build a model with
    :func:`create_model` to save it.
    """
    feed = resolve_feed(model_2d, input_size=image_size(model_2d), num_frames=num_frames)
    return VideoClassifier(model_2d, _video_config(None, model_2d, feed, temporal, levels, fold_div, {}))


def create_model(
    backbone: str,
    temporal: str = "laps",
    num_frames: int = 8,
    num_classes: int | None = None,
    pretrained: bool | str | Path = False,
    levels: list[int | None] | None = None,
    fold_div: int = 4,
    **timm_kwargs,
) -> VideoClassifier:
    """Build a video classifier over a timm backbone.

    Args:
        backbone: a timm model name of :func:`list_models` (optionally ``name.tag``).
        temporal: ``base2d | joint | plain_shift | ps | la | laps``.
        num_frames: clip length T (the level schedule is derived for it); change it later with
            :meth:`VideoClassifier.set_num_frames`.
        num_classes: classifier size (default: timm's).
        pretrained: ``True`` for timm's hub weights (for the paper's backbones the paper's:
            see :func:`laps.models.pretrained.weights_name`), or a path to a local 2D checkpoint
            (``.safetensors``, ``.pth``, ``.npz``). Without network and cache it fails at once.
        levels, fold_div: see :class:`VideoClassifier`.
        **timm_kwargs: passed to ``timm.create_model`` (``img_size``, ``drop_path_rate``, ...).

    The model's ``video_cfg`` records these arguments, and feeds it as the backbone's timm
    weights were fed (:func:`~laps.models.feed.resolve_feed` of their ``pretrained_cfg``).
    """
    reason = refusal(backbone)
    if reason:
        raise UnsupportedBackboneError(reason)
    name = weights_name(backbone) if pretrained is True else backbone
    if pretrained is True:
        check_hub_weights(name)
    sized = {} if num_classes is None else {"num_classes": num_classes}
    model = timm.create_model(name, pretrained=pretrained is True, **timm_kwargs, **sized)
    if pretrained not in (True, False, None, ""):
        load_pretrained_file(model, pretrained)
    feed = resolve_feed(pretrained_cfg=weights_cfg(backbone) or getattr(model, "pretrained_cfg", None),
                        input_size=image_size(model, timm_kwargs.get("img_size")), num_frames=num_frames)
    return VideoClassifier(model, _video_config(backbone, model, feed, temporal, levels, fold_div, timm_kwargs))


def model_from_config(video_cfg: VideoConfig) -> VideoClassifier:
    """The model a saved ``video_cfg`` describes (``laps.from_pretrained``), its weights not loaded."""
    return VideoClassifier(image_model(video_cfg), video_cfg)


def image_model(video_cfg: VideoConfig) -> nn.Module:
    """The timm image model of a ``video_cfg`` (random weights): with a text head, built with
    ``num_classes=projection``, the head the :class:`TextHead` keeps as its projection."""
    reason = refusal(video_cfg.backbone)
    if reason:
        raise UnsupportedBackboneError(reason)
    num_classes = video_cfg.projection if video_cfg.head == "text" else video_cfg.num_classes
    return timm.create_model(video_cfg.backbone, num_classes=num_classes, **video_cfg.timm_kwargs)
