"""VideoClassifier: a timm image model run over the frames of a clip, with temporal attention.

``(B, T, C, H, W)`` -> ``B*T`` frames -> backbone (its attention replaced by
:class:`~laps.models.temporal.TemporalAttention`) -> per-frame logits ``(B*T, K)`` -> mean over
``T`` -> clip logits ``(B, K)``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from laps.errors import CheckpointError, ConfigError, ShapeError, UnsupportedBackboneError
from laps.models.registry import family_of
from laps.models.temporal import TemporalAttention, block_levels, check_variant
from laps.models.text_head import TextHead, install_text_head
from laps.models.video_config import VideoConfig

_PREFIX = "backbone."


class VideoClassifier(nn.Module):
    """A video classifier made of an (already converted or convertible) timm image backbone.

    It adds no parameter: ``model.backbone.state_dict()`` has exactly the timm image model's keys
    and shapes, and the model's own ``state_dict()`` the same under ``backbone.`` (as
    ``named_parameters()``). :func:`checkpoint_filter_fn` maps a timm image checkpoint onto it.

    Its identity is :attr:`video_cfg`, a :class:`~laps.models.video_config.VideoConfig` given at
    construction (``create_model`` and ``lapsify`` build it): the architecture (its ``temporal``
    variant, ``num_frames``, ``levels``, ``fold_div``) and how to feed it. ``save_pretrained``
    writes it as ``config.json``. The model runs clips of :attr:`num_frames` frames;
    :meth:`set_num_frames` changes it.

    Args:
        backbone: a timm image model of a family of :mod:`laps.models.registry` (converted in place
            by its family's ``convert``; :attr:`family` is that record from then on).
        video_cfg: its config; ``temporal`` is one of ``base2d, joint, plain_shift, ps, la, laps``;
            ``levels`` is the leap level per attention block (``None``/0 = per-frame; default: cycle
            ``1..log2 T``; only used by ``la``/``laps``); ``fold_div``: channels shifted each way =
            ``head_dim // fold_div`` (periodic) or ``C // fold_div`` (plain).
    """

    def __init__(self, backbone: nn.Module, video_cfg: VideoConfig) -> None:
        super().__init__()
        _, shift = check_variant(video_cfg.temporal)
        self.backbone = backbone
        self.video_cfg = video_cfg
        if video_cfg.head == "text" and not isinstance(backbone.get_classifier(), TextHead):
            install_text_head(backbone, video_cfg.projection, video_cfg.num_classes)
        self.family = family_of(backbone)
        if not self.family.convert(backbone, shift, video_cfg.fold_div):
            raise UnsupportedBackboneError(f"{type(backbone).__name__} has no attention block to convert")
        self.in_chans = next(m for m in backbone.modules() if isinstance(m, nn.Conv2d)).in_channels
        self.set_num_frames(video_cfg.num_frames)

    @property
    def temporal(self) -> str:
        return self.video_cfg.temporal

    @property
    def num_frames(self) -> int:
        return self.video_cfg.num_frames

    @property
    def levels(self) -> list[int | None] | None:
        """The explicit leap levels the model was built with (``None``: the default schedule)."""
        return None if self.video_cfg.levels is None else list(self.video_cfg.levels)

    @property
    def fold_div(self) -> int:
        return self.video_cfg.fold_div

    @property
    def num_classes(self) -> int:
        return self.video_cfg.num_classes

    @property
    def attention_modules(self) -> list[TemporalAttention]:
        return [m for m in self.backbone.modules() if isinstance(m, TemporalAttention)]

    def set_num_frames(self, num_frames: int) -> None:
        """Make the model run clips of ``num_frames`` frames: every attention block gets the frame
        groups (and leap levels) of that clip length. Without explicit ``levels`` the default level
        schedule is derived anew; explicit levels stay, and their leaps ``T // 2^level`` follow T.
        :attr:`video_cfg` records the new clip length.

        Like timm's ``set_input_size``, this reconfigures the model: call it between forwards, not
        while another thread runs the model.
        """
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
            raise ConfigError(f"num_frames must be an integer >= 1, got {num_frames!r}")
        modules = self.attention_modules
        levels = block_levels(self.temporal, num_frames, len(modules), self.levels)
        for module, level in zip(modules, levels):
            module.set_frames(num_frames, level)
        self.video_cfg = self.video_cfg.updated(num_frames=num_frames)
        self.block_levels = levels

    def frames(self, clips: torch.Tensor) -> torch.Tensor:
        """Check ``(B, T, C, H, W)`` clips (T must be :attr:`num_frames`) -> ``(B*T, C, H, W)``."""
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
        if clips.shape[1] != self.num_frames:
            raise ShapeError(
                f"clips have {clips.shape[1]} frames but the model is set for {self.num_frames}; "
                f"call model.set_num_frames({clips.shape[1]}) first"
            )
        self.check_frame_size(clips)
        return clips.flatten(0, 1)

    def check_frame_size(self, clips: torch.Tensor) -> None:
        """Refuse ``(..., H, W)`` clips whose frame size the backbone was not built for (timm's
        ``img_size``), in one line that names the fix, instead of timm's assertion deep in the model."""
        size = self.family.input_size(self.backbone)
        height, width = clips.shape[-2:]
        if size is not None and (height, width) != tuple(size):
            fix = f"img_size={height}" if height == width else f"img_size=({height}, {width})"
            raise ShapeError(
                f"clips are {height}x{width} px but the {type(self.backbone).__name__} backbone takes "
                f"{size[0]}x{size[1]} frames; build the model with {fix} (laps.create_model(..., {fix})) "
                f"or resize the frames to {size[0]}x{size[1]}"
            )

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the activations of each backbone block in the backward pass instead of keeping
        them (activation checkpointing, through timm's own ``set_grad_checkpointing``, at the
        granularity the timm model chose: blocks or stages). Forward outputs and gradients stay the
        same; it saves most of the activation memory at the cost of a second forward pass through the
        blocks. BatchNorm layers inside a checkpointed part update their running statistics in the
        recomputation too."""
        self.backbone.set_grad_checkpointing(enable)

    def forward_frames(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(B, T, K)`` of clips ``(B, T, C, H, W)``."""
        batch, num_frames = clips.shape[:2]
        features = self.backbone.forward_features(self.frames(clips))
        return self.backbone.forward_head(features).unflatten(0, (batch, num_frames))

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip features ``(B, D)``: the backbone's pooled pre-logits averaged over frames; with a text
        head, the frames' unit joint-space embeddings (:meth:`TextHead.embed`) averaged, comparable with
        text embeddings (normalise them again to compare by cosine)."""
        batch, num_frames = clips.shape[:2]
        features = self.backbone.forward_features(self.frames(clips))
        pooled = self.backbone.forward_head(features, pre_logits=True)
        classifier = self.backbone.get_classifier()
        if isinstance(classifier, TextHead):
            pooled = classifier.embed(pooled)
        return pooled.unflatten(0, (batch, num_frames)).mean(1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Clip logits ``(B, K)`` of clip features ``(B, D)`` (:meth:`forward_features`): the classifier
        (a text head's :meth:`TextHead.classify`) is linear, so ``head(forward_features(x))`` is ``forward(x)``."""
        classifier = self.backbone.get_classifier()
        return classifier.classify(features) if isinstance(classifier, TextHead) else classifier(features)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clip logits ``(B, K)`` = mean over T of the per-frame logits of ``(B, T, C, H, W)``."""
        return self.forward_frames(clips).mean(1)

    def save_pretrained(self, directory: str | Path, classes: list[str] | None = None,
                        mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                        interpolation: str | None = None, sampling_rate: int | None = None) -> Path:
        """Write ``config.json`` (:attr:`video_cfg`) and ``model.safetensors`` into ``directory``:
        everything :func:`laps.from_pretrained` needs to rebuild this model and feed it. Each
        argument given replaces the :attr:`video_cfg` value in the files written (see
        :mod:`laps.models.sharing`)."""
        from laps.models.sharing import save_pretrained

        return save_pretrained(self, directory, classes, mean=mean, std=std, interpolation=interpolation,
                               sampling_rate=sampling_rate)

    def extra_repr(self) -> str:
        return f"temporal={self.temporal}, num_frames={self.num_frames}, levels={self.block_levels}"


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: VideoClassifier) -> dict[str, torch.Tensor]:
    """A state dict for ``model.load_state_dict``: keys of a timm image model (``blocks.0.attn.qkv.weight``,
    as in a timm checkpoint or ``model.backbone.state_dict()``) get the ``backbone.`` prefix where the
    model has them under it; every other key is kept as it is (a strict load then names it)."""
    own = model.state_dict().keys()

    def mapped(key: str) -> str:
        return _PREFIX + key if key not in own and _PREFIX + key in own else key

    return {mapped(key): value for key, value in state_dict.items()}


def load_weights_into(model: VideoClassifier, tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Strict load of weights in timm's image-model format (weights files) or the model's own
    (training states) with one clear message when the checkpoint belongs to another model."""
    tensors = checkpoint_filter_fn(tensors, model)
    expected = model.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = (f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} with other shapes"
                  + (f" (e.g. {wrong[0]}: {tuple(tensors[wrong[0]].shape)} vs {tuple(expected[wrong[0]].shape)})" if wrong else ""))
        raise CheckpointError(
            f"checkpoint {source} does not fit this model: {detail}; it was saved from another "
            "backbone or class count — build the model from the checkpoint's own config"
        )
    model.load_state_dict(tensors)
