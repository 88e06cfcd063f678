"""The image tower of an open_clip model as a timm model: which timm model, with which arguments.

open_clip builds an image tower in one of two ways, and each has its timm form:

- its own ``VisionTransformer`` (OpenAI CLIP, LAION, DFN, MetaCLIP): timm's ``vit_*_clip_*`` models, the
  ``_quickgelu`` ones where the config says ``quick_gelu`` (OpenAI's weights use QuickGELU; the other
  activation gives other features), the visual projection as timm's ``head``;
- a timm trunk (``timm_model_name``: SigLIP, SigLIP2, EVA02-CLIP, PE core): that timm model with the
  pooling open_clip gives it, its ``head`` the projection (``timm_proj`` empty or ``"linear"``) or none
  (``"none"``).

timm's ``checkpoint_filter_fn`` then maps the open_clip weights (``visual.*``, ``visual.trunk.*``) onto it.
Layouts neither form reproduces exactly are refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import timm

from laps.errors import UnsupportedBackboneError

#: (width, layers) of open_clip's ViTs -> timm's size name
_SIZES = {(768, 12): "base", (1024, 24): "large", (1280, 32): "huge"}
#: open_clip VisionTransformer options timm's CLIP ViTs do not have, with their default
_VIT_DEFAULTS = {"ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
                 "final_ln_after_pool": False, "pool_type": "tok", "act_kwargs": None, "norm_kwargs": None,
                 "block_type": None, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
                 "scale_attn_inner": False, "scale_attn": False, "scale_fc": False}


@dataclass(frozen=True)
class Tower:
    """A timm image model standing for an open_clip image tower: ``timm.create_model(backbone,
    num_classes=projection, **timm_kwargs)``; ``projection`` is 0 where the tower has none."""

    backbone: str
    timm_kwargs: dict[str, Any]
    projection: int


def image_tower(model_cfg: dict[str, Any], name: str) -> Tower:
    """The timm form of the image tower of open_clip config ``model_cfg`` (of model ``name``)."""
    vision = model_cfg.get("vision_cfg", {})
    embed_dim = int(model_cfg["embed_dim"])
    if vision.get("timm_model_name"):
        return _timm_tower(vision, embed_dim, name)
    return _vit_tower(vision, embed_dim, bool(model_cfg.get("quick_gelu", False)), name)


def _timm_tower(vision: dict[str, Any], embed_dim: int, name: str) -> Tower:
    proj = vision.get("timm_proj", "linear")
    pool = vision.get("timm_pool", "avg")
    if proj not in (None, "", "none", "linear") or pool in ("abs_attn", "rot_attn"):
        raise UnsupportedBackboneError(f"{name}: its image tower adds an open_clip head (timm_proj={proj!r}, "
                                       f"timm_pool={pool!r}) that timm's model has no form of")
    if proj == "linear" and vision.get("timm_proj_bias", False):
        raise UnsupportedBackboneError(f"{name}: its linear projection has a bias, which timm's filter does not carry")
    return Tower(vision["timm_model_name"], {"global_pool": pool}, 0 if proj == "none" else embed_dim)


def _vit_tower(vision: dict[str, Any], embed_dim: int, quick_gelu: bool, name: str) -> Tower:
    layers = vision.get("layers", 12)
    if not isinstance(layers, int):
        raise UnsupportedBackboneError(f"{name}: a ResNet image tower is not a transformer; laps converts ViTs")
    odd = [key for key, default in _VIT_DEFAULTS.items() if vision.get(key, default) != default]
    if odd:
        raise UnsupportedBackboneError(f"{name}: its ViT sets {', '.join(odd)}, which timm's CLIP ViTs do not have")
    width, patch = int(vision.get("width", 768)), int(vision.get("patch_size", 16))
    size = vision.get("image_size", 224)
    size = size if isinstance(size, int) else size[0]
    heads, mlp_ratio = width // int(vision.get("head_width", 64)), float(vision.get("mlp_ratio", 4.0))
    act = "_quickgelu" if quick_gelu else ""
    known = _SIZES.get((width, layers))
    named = f"vit_{known}_patch{patch}_clip{act}_{size}"
    if known and timm.is_model(named) and heads == width // 64 and mlp_ratio == 4.0:
        return Tower(named, {}, embed_dim)
    kwargs = {"embed_dim": width, "depth": layers, "num_heads": heads, "patch_size": patch, "img_size": size,
              "mlp_ratio": mlp_ratio}
    return Tower(f"vit_base_patch16_clip{act}_224", kwargs, embed_dim)
