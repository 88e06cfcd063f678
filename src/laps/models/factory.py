"""``create_model``, ``lapsify`` and ``list_models``: the public way to build video models."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import timm
from torch import nn

from laps.errors import UnsupportedBackboneError
from laps.models.pretrained import check_hub_weights, load_pretrained_file, weights_name
from laps.models.registry import family_models, refusal, refused_models
from laps.models.video import VideoClassifier


def list_models(pattern: str = "*") -> list[str]:
    """timm backbones laps converts, filtered by a glob ``pattern``: every model of the families of
    :mod:`laps.models.registry` (the ViT family: ViT, DeiT, CLIP, SigLIP, DINOv2, MAE, AIMv2, TIPSv2,
    BEiT3, flexivit; the Eva family: EVA02, DINOv3, Perception Encoder, rope ViTs; Visformer), less
    the models they refuse."""
    refused = refused_models()
    return sorted(n for n in family_models() if fnmatch.fnmatch(n, pattern) and n not in refused)


def lapsify(
    model_2d: nn.Module,
    num_frames: int = 8,
    temporal: str = "laps",
    levels: list[int | None] | None = None,
    fold_div: int = 4,
) -> VideoClassifier:
    """Turn a timm image model into a video classifier, converting its attention in place.

    The returned :class:`VideoClassifier` takes ``(B, T, C, H, W)`` clips with ``T = num_frames``
    and shares every parameter with ``model_2d`` (its ``backbone``).
    """
    return VideoClassifier(model_2d, num_frames=num_frames, temporal=temporal, levels=levels, fold_div=fold_div)


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
        backbone: a timm model name, e.g. ``"vit_base_patch16_224"`` or ``"visformer_small"``.
        temporal: ``base2d | joint | plain_shift | ps | la | laps``.
        num_frames: clip length T (the level schedule is derived for it); change it later with
            :meth:`VideoClassifier.set_num_frames`.
        num_classes: classifier size (default: timm's).
        pretrained: ``True`` for timm's hub weights (for the paper's backbones the paper's:
            see :func:`laps.models.pretrained.weights_name`), or a path to a local 2D checkpoint
            (``.safetensors``, ``.pth``, ``.npz``). Without network and cache it fails at once.
        levels, fold_div: see :class:`VideoClassifier`.
        **timm_kwargs: passed to ``timm.create_model`` (``img_size``, ``drop_path_rate``, ...).
    """
    reason = refusal(backbone)
    if reason:
        raise UnsupportedBackboneError(reason)
    architecture = {"backbone": backbone, "temporal": temporal, "num_frames": num_frames, "levels": levels,
                    "fold_div": fold_div, "timm_kwargs": dict(timm_kwargs)}
    if num_classes is not None:
        timm_kwargs["num_classes"] = num_classes
    if pretrained is True:
        backbone = weights_name(backbone)
        check_hub_weights(backbone)
    model = timm.create_model(backbone, pretrained=pretrained is True, **timm_kwargs)
    if pretrained not in (True, False, None, ""):
        load_pretrained_file(model, pretrained)
    video = lapsify(model, num_frames=num_frames, temporal=temporal, levels=levels, fold_div=fold_div)
    video.architecture = {**architecture, "num_classes": video.num_classes}
    return video
