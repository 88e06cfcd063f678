"""``create_model``, ``lapsify`` and ``list_models``: the public way to build video models."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import timm
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import split_model_name_tag
from torch import nn

from laps.errors import UnsupportedBackboneError
from laps.models.pretrained import check_hub_weights, load_pretrained_file, normalization, weights_name
from laps.models.pretrained import interpolation as weights_interpolation
from laps.models.video import VideoClassifier
from laps.models.video_config import VideoConfig

#: timm model modules whose models laps converts, with the adapter family
FAMILY_MODULES = {
    "vision_transformer": "VisionTransformer",  # ViT, CLIP, SigLIP(2), DINOv2, MAE, AIMv2, TIPSv2, BEiT3, ...
    "vision_transformer_hybrid": "VisionTransformer",  # a conv stem before plain ViT blocks
    "deit": "VisionTransformer",
    "eva": "Eva",  # EVA02, DINOv3, Perception Encoder, rope ViTs
    "visformer": "Visformer",
}
_PARALLEL = "its attention is fused with the MLP or split into parallel branches, which laps has no temporal version of"
_DIFF = "differential attention subtracts two softmax maps; laps converts plain softmax attention only"
#: models of those modules that do not convert, with the reason
REFUSED_MODELS = {
    "vit_small_patch16_18x2_224": _PARALLEL, "vit_base_patch16_18x2_224": _PARALLEL,
    "vit_base_patch16_xp_224": _PARALLEL, "vit_large_patch14_xp_224": _PARALLEL, "vit_huge_patch14_xp_224": _PARALLEL,
    "vit_pwee_patch16_reg1_gap_256": _PARALLEL, "vit_dpwee_patch16_reg1_gap_256": _PARALLEL,
    "vit_dwee_patch16_reg1_gap_256": _DIFF, "vit_dlittle_patch16_reg1_gap_256": _DIFF,
}
_RELPOS = ("a relative position bias between the tokens of one image, which has no meaning between the tokens "
           "of two frames")
_WINDOWED = "windowed attention: tokens attend within local windows, so there is no global attention to pair frames in"
#: other timm modules built on attention, and why laps does not convert them exactly
REFUSED_MODULES = {
    "beit": _RELPOS, "vision_transformer_relpos": _RELPOS, "swin_transformer_v2_cr": _WINDOWED,
    "swin_transformer": _WINDOWED, "swin_transformer_v2": _WINDOWED, "vision_transformer_sam": _WINDOWED,
    "hiera": _WINDOWED, "hieradet_sam2": _WINDOWED, "maxxvit": _WINDOWED, "davit": _WINDOWED, "focalnet": _WINDOWED,
    "gcvit": _WINDOWED, "nest": _WINDOWED, "twins": _WINDOWED, "volo": _WINDOWED, "xcit": "cross-covariance "
    "attention over channels, not tokens", "mvitv2": "pooling attention with a relative position bias",
    "naflexvit": "variable-resolution patch sequences with per-image masks", "levit": "attention with a "
    "learned relative position bias", "cait": "class-attention layers outside the blocks",
}


def _family_models() -> set[str]:
    return set(timm.list_models(module=list(FAMILY_MODULES)))


def refusal(backbone: str) -> str | None:
    """Why laps does not convert the timm model ``backbone`` (a name, optionally ``name.tag``), or
    ``None`` when it does."""
    name, _ = split_model_name_tag(backbone)
    if not timm.is_model(name):
        return f"{backbone!r} is not a timm model; see laps.list_models() for the backbones laps converts"
    if name in REFUSED_MODELS:
        return f"{name} cannot become a video model exactly: {REFUSED_MODELS[name]}"
    if name in _family_models():
        return None
    module = next((m for m in REFUSED_MODULES if name in timm.list_models(module=m)), None)
    if module is not None:
        return f"{name} cannot become a video model exactly: it uses {REFUSED_MODULES[module]}"
    return (f"{name} is not a global-attention image transformer that laps converts; laps converts timm's "
            "VisionTransformer, Eva and Visformer families: see laps.list_models()")


def list_models(pattern: str = "*") -> list[str]:
    """timm backbones laps converts, filtered by a glob ``pattern``: every model of the ViT family
    (ViT, DeiT, CLIP, SigLIP, DINOv2, MAE, AIMv2, TIPSv2, BEiT3, flexivit), the Eva family (EVA02,
    DINOv3, Perception Encoder, rope ViTs) and Visformer, less :data:`REFUSED_MODELS`."""
    return sorted(n for n in _family_models() if fnmatch.fnmatch(n, pattern) and n not in REFUSED_MODELS)


def image_size(model_2d: nn.Module, img_size: int | tuple[int, int] | None = None) -> int:
    """The input size (width) of a timm image model: ``img_size`` if it was built with one, else the
    model's own (Visformer's ``img_size``, a ViT's patch embedding's), else its ``pretrained_cfg``'s."""
    patch_embed = getattr(model_2d, "patch_embed", None)
    size = (img_size or getattr(model_2d, "img_size", None) or getattr(patch_embed, "img_size", None)
            or model_2d.pretrained_cfg["input_size"])
    return int(size if isinstance(size, int) else size[-1])


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
    ``model_2d.pretrained_cfg`` says; it names no backbone (laps cannot tell the timm arguments
    ``model_2d`` was built with), so build a model with :func:`create_model` to save it.
    """
    cfg = model_2d.pretrained_cfg
    video_cfg = VideoConfig(backbone=None, temporal=temporal, num_frames=num_frames, num_classes=model_2d.num_classes,
                            img_size=image_size(model_2d), mean=cfg.get("mean", IMAGENET_DEFAULT_MEAN),
                            std=cfg.get("std", IMAGENET_DEFAULT_STD),
                            interpolation=cfg.get("interpolation") or "bicubic", levels=levels, fold_div=fold_div)
    return VideoClassifier(model_2d, video_cfg)


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

    The model's ``video_cfg`` records these arguments, and feeds it as the backbone's timm
    weights were fed (their normalisation and resize interpolation).
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
    mean, std = normalization(backbone)
    video_cfg = VideoConfig(backbone=backbone, temporal=temporal, num_frames=num_frames, num_classes=model.num_classes,
                            img_size=image_size(model, timm_kwargs.get("img_size")), mean=mean, std=std,
                            interpolation=weights_interpolation(backbone), levels=levels, fold_div=fold_div,
                            timm_kwargs=timm_kwargs)
    return VideoClassifier(model, video_cfg)


def model_from_config(video_cfg: VideoConfig) -> VideoClassifier:
    """The model a saved ``video_cfg`` describes (``laps.from_pretrained``), its weights not loaded."""
    reason = refusal(video_cfg.backbone)
    if reason:
        raise UnsupportedBackboneError(reason)
    model = timm.create_model(video_cfg.backbone, num_classes=video_cfg.num_classes, **video_cfg.timm_kwargs)
    return VideoClassifier(model, video_cfg)
