"""VideoClassifier: a timm image model run over the frames of a clip, with temporal attention.

``(B, T, C, H, W)`` -> ``B*T`` frames -> backbone (its attention replaced by
:class:`~laps.models.temporal.TemporalAttention`) -> per-frame logits ``(B*T, K)`` -> mean over
``T`` -> clip logits ``(B, K)``.
"""

from __future__ import annotations

import torch
from torch import nn

from laps.errors import ShapeError, UnsupportedBackboneError
from laps.models.temporal import TemporalAttention, block_levels, check_variant
from laps.models.visformer import convert_visformer, is_visformer
from laps.models.vit import convert_vit, is_vit

_PREFIX = "backbone."


def convert_backbone(model: nn.Module, shift: str, fold_div: int) -> list[TemporalAttention]:
    """Swap every attention module of a supported timm model for its temporal version."""
    if is_vit(model):
        return convert_vit(model, shift, fold_div)
    if is_visformer(model):
        return convert_visformer(model, shift, fold_div)
    raise UnsupportedBackboneError(
        f"{type(model).__name__} is not a supported backbone; laps supports the timm "
        "VisionTransformer family (vit_*, deit_*) and Visformer (visformer_tiny, visformer_small)"
    )


class VideoClassifier(nn.Module):
    """A video classifier made of an (already converted or convertible) timm image backbone.

    Its ``state_dict`` has exactly the backbone's keys (no ``backbone.`` prefix), so timm 2D
    checkpoints load unchanged and video checkpoints load back into timm image models.

    Args:
        backbone: a timm VisionTransformer-family or Visformer model (converted in place).
        num_frames: frames per clip the model is built for (and the default schedule's T).
        temporal: one of ``base2d, joint, plain_shift, ps, la, laps``.
        levels: leap level per attention block (``None``/0 = per-frame); default: cycle
            ``1..log2 T``. Only used by ``la``/``laps``.
        fold_div: channels shifted each way = ``head_dim // fold_div`` (periodic) or
            ``C // fold_div`` (plain).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_frames: int = 8,
        temporal: str = "laps",
        levels: list[int | None] | None = None,
        fold_div: int = 4,
    ) -> None:
        super().__init__()
        _, shift = check_variant(temporal)
        self.backbone = backbone
        self.temporal = temporal
        self.fold_div = fold_div
        self.levels = list(levels) if levels is not None else None
        if not convert_backbone(backbone, shift, fold_div):
            raise UnsupportedBackboneError(f"{type(backbone).__name__} has no attention block to convert")
        self.in_chans = next(m for m in backbone.modules() if isinstance(m, nn.Conv2d)).in_channels
        self.num_frames = num_frames
        self._configure(num_frames)
        self._register_state_dict_hook(_strip_prefix)
        self._register_load_state_dict_pre_hook(_add_prefix)

    @property
    def num_classes(self) -> int:
        return self.backbone.num_classes

    @property
    def attention_modules(self) -> list[TemporalAttention]:
        return [m for m in self.backbone.modules() if isinstance(m, TemporalAttention)]

    def _configure(self, num_frames: int) -> None:
        """Set every attention block's frame groups for clips of ``num_frames`` frames."""
        modules = self.attention_modules
        self.block_levels = block_levels(self.temporal, num_frames, len(modules), self.levels)
        for module, level in zip(modules, self.block_levels):
            module.set_frames(num_frames, level)
        self._frames_configured = num_frames

    def frames(self, clips: torch.Tensor) -> torch.Tensor:
        """Check ``(B, T, C, H, W)`` clips, configure for their T and return ``(B*T, C, H, W)``."""
        if clips.dim() != 5:
            raise ShapeError(
                f"expected clips of shape (B, T, C, H, W), got {clips.dim()}-D shape {tuple(clips.shape)}; "
                "add a batch dimension with x.unsqueeze(0) for a single clip"
            )
        if clips.shape[2] != self.in_chans:
            raise ShapeError(
                f"clips have {clips.shape[2]} channels at dim 2 but the backbone takes {self.in_chans}; "
                "pass (B, T, C, H, W) with frames before channels"
            )
        if clips.shape[1] != self._frames_configured:
            self._configure(clips.shape[1])
        return clips.flatten(0, 1)

    def forward_frames(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(B, T, K)`` of clips ``(B, T, C, H, W)``."""
        batch, num_frames = clips.shape[:2]
        features = self.backbone.forward_features(self.frames(clips))
        return self.backbone.forward_head(features).unflatten(0, (batch, num_frames))

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip features ``(B, D)``: the backbone's pooled pre-logits averaged over frames."""
        batch, num_frames = clips.shape[:2]
        features = self.backbone.forward_features(self.frames(clips))
        pooled = self.backbone.forward_head(features, pre_logits=True)
        return pooled.unflatten(0, (batch, num_frames)).mean(1)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip logits ``(B, K)`` = mean over T of the per-frame logits of ``(B, T, C, H, W)``."""
        return self.forward_frames(clips).mean(1)

    def extra_repr(self) -> str:
        return f"temporal={self.temporal}, num_frames={self.num_frames}, levels={self.block_levels}"


def _strip_prefix(module, state_dict, prefix, local_metadata):
    for key in list(state_dict):
        if key.startswith(prefix + _PREFIX):
            state_dict[prefix + key[len(prefix) + len(_PREFIX) :]] = state_dict.pop(key)
    return state_dict


def _add_prefix(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
    for key in list(state_dict):
        if key.startswith(prefix) and not key.startswith(prefix + _PREFIX):
            state_dict[prefix + _PREFIX + key[len(prefix) :]] = state_dict.pop(key)
