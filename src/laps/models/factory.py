"""``create_model``, ``lapsify`` and ``list_models``: the public way to build video models."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import timm
from torch import nn

from laps.errors import UnsupportedBackboneError
from laps.models.pretrained import check_hub_weights, load_pretrained_file, weights_name
from laps.models.video import VideoClassifier

SUPPORTED_PATTERNS = ("vit_*", "deit_*", "deit3_*", "visformer_*")
_EXCLUDED = ("*_siglip*", "*_rope*", "*_clip_*", "*eva*", "*_reg*", "*_dinov*", "*_mae", "*_xp_*",
             "*_parallel_*", "*_relpos_*", "*_srelpos_*", "*_pe_*", "*_naflex*", "*_diff*", "*_so400m*")


def list_models(pattern: str = "*") -> list[str]:
    """timm backbones laps knows how to convert, filtered by a glob ``pattern``."""
    names = set()
    for family in SUPPORTED_PATTERNS:
        names.update(timm.list_models(family))
    return sorted(
        n for n in names
        if fnmatch.fnmatch(n, pattern) and not any(fnmatch.fnmatch(n, x) for x in _EXCLUDED)
    )


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
    if not timm.is_model(backbone):
        raise UnsupportedBackboneError(
            f"unknown timm model {backbone!r}; see laps.list_models() for supported backbones "
            f"({', '.join(SUPPORTED_PATTERNS)})"
        )
    if not any(fnmatch.fnmatch(backbone, family) for family in SUPPORTED_PATTERNS):
        raise UnsupportedBackboneError(
            f"{backbone!r} is not a supported backbone family; laps supports the timm "
            f"VisionTransformer family and Visformer ({', '.join(SUPPORTED_PATTERNS)})"
        )
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
