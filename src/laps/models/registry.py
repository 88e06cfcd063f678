"""The backbone families laps converts, and the lookups that read their records.

Adding a family is adding its module (a :class:`~laps.models.family.Family` named ``FAMILY``) and its
entry in :data:`FAMILIES`, or, outside laps, :func:`register_family`. Nothing else in laps names a
family: the factory, the video model, the loader, the feed's presets, training's partial freezing and
FSDP's blocks all read the record.
"""

from __future__ import annotations

import timm
from timm.models import split_model_name_tag
from torch import nn

from laps.errors import UnsupportedBackboneError
from laps.models import eva, visformer, vit
from laps.models.family import Family

#: the families, in the order a model is matched against them (a registered one first)
FAMILIES: list[Family] = [vit.FAMILY, eva.FAMILY, visformer.FAMILY]

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


def register_family(family: Family) -> Family:
    """Add ``family`` to :data:`FAMILIES`, matched before the others (so a family of a subclass of
    another family's model type wins) -> ``family``. A second family of the same name is refused."""
    if any(known.name == family.name for known in FAMILIES):
        raise ValueError(f"a family named {family.name!r} is already registered")
    FAMILIES.insert(0, family)
    return family


def _names() -> str:
    return ", ".join(family.name for family in FAMILIES[:-1]) + f" and {FAMILIES[-1].name}"


def family_of(model: nn.Module) -> Family:
    """The family of a timm image model (converted or not); raises
    :class:`~laps.errors.UnsupportedBackboneError` for a model of no family."""
    for family in FAMILIES:
        if family.matches(model):
            return family
    raise UnsupportedBackboneError(
        f"{type(model).__name__} is not a supported backbone; laps converts timm's {_names()} families: "
        "see laps.list_models()"
    )


def refused_models() -> dict[str, str]:
    """Every model of the families' timm modules that does not convert, with the reason."""
    return {name: reason for family in FAMILIES for name, reason in family.refused.items()}


def family_models() -> set[str]:
    """The timm model names of every family's modules, refused ones included."""
    return set(timm.list_models(module=[module for family in FAMILIES for module in family.timm_modules]))


def refusal(backbone: str) -> str | None:
    """Why laps does not convert the timm model ``backbone`` (a name, optionally ``name.tag``), or
    ``None`` when it does."""
    name, _ = split_model_name_tag(backbone)
    if not timm.is_model(name):
        return f"{backbone!r} is not a timm model; see laps.list_models() for the backbones laps converts"
    refused = refused_models()
    if name in refused:
        return f"{name} cannot become a video model exactly: {refused[name]}"
    if name in family_models():
        return None
    module = next((m for m in REFUSED_MODULES if name in timm.list_models(module=m)), None)
    if module is not None:
        return f"{name} cannot become a video model exactly: it uses {REFUSED_MODULES[module]}"
    return (f"{name} is not a global-attention image transformer that laps converts; laps converts timm's "
            f"{_names()} families: see laps.list_models()")
