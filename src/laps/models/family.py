"""The record of a backbone family: everything laps knows about one kind of timm image model.

Each family module (:mod:`~laps.models.vit`, :mod:`~laps.models.eva`, :mod:`~laps.models.visformer`)
defines one :class:`Family` as ``FAMILY``; :mod:`laps.models.registry` lists them. The factory, the
video model, the pretrained loader and the optimizer's layer grouping read the record and know
nothing else about a family.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from laps.models.temporal import TemporalAttention

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Family:
    """One backbone family.

    Attributes:
        name: the timm model class the family is named after, e.g. ``"VisionTransformer"``.
        timm_modules: the timm model modules (``timm.list_models(module=...)``) whose models it covers.
        model_type: the timm class its models are instances of (how a built model is recognised).
        convert: ``convert(model, shift, fold_div)`` replaces the model's attention modules in place by
            temporal ones and returns them in block order; raises ``UnsupportedBackboneError`` with the
            reason for a model it cannot take over exactly.
        filter_checkpoint: ``filter_checkpoint(state_dict, model)`` maps a 2D checkpoint onto the image
            ``model`` as timm's own ``checkpoint_filter_fn`` does: key formats, position embeddings
            resampled to the model's grid.
        input_size: ``input_size(model)``: the frame size ``(H, W)`` the model takes, ``None`` when it
            takes any.
        block_pattern: matches the parameter names of the blocks ``optim.train: last:N`` counts (in
            timm's layer order, the order layer decay uses).
        refused: models of :attr:`timm_modules` that do not convert, with the reason.
        norms: the family's normalisation presets by name, ``(mean, std)`` (``data.norm`` takes the names).
        load_npz: ``load_npz(model, path)`` loads a big_vision ``.npz`` checkpoint into the model in
            place; ``None`` when the family has no such checkpoints.
    """

    name: str
    timm_modules: tuple[str, ...]
    model_type: type[nn.Module]
    convert: Callable[[nn.Module, str, int], list[TemporalAttention]]
    filter_checkpoint: Callable[[StateDict, nn.Module], StateDict]
    input_size: Callable[[nn.Module], tuple[int, int] | None]
    block_pattern: re.Pattern[str]
    refused: Mapping[str, str] = field(default_factory=dict)
    norms: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = field(default_factory=dict)
    load_npz: Callable[[nn.Module, str], None] | None = None

    def matches(self, model: nn.Module) -> bool:
        """Whether ``model`` (a timm image model, converted or not) belongs to this family."""
        return isinstance(model, self.model_type)


def patch_embed_size(model: nn.Module) -> tuple[int, int] | None:
    """The input size a timm model with a ``patch_embed`` (``PatchEmbed``, ``HybridEmbed``) asserts,
    ``None`` when it is built for any size (``dynamic_img_size``)."""
    embed = model.patch_embed
    return tuple(embed.img_size) if embed.strict_img_size else None
