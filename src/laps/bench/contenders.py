"""The models ``laps bench model`` compares: LAPS variants of timm backbones and peer video
transformers from Hugging Face ``transformers`` (random weights, built from their configs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from laps.bench.options import PEERS
from laps.errors import ConfigError
from laps.models.factory import create_model

NUM_CLASSES = 400  # Kinetics-400 head, as in the paper

@dataclass(frozen=True)
class Contender:
    """One benchmarked model: a timm ``backbone`` with a LAPS ``variant``, or a peer from
    :data:`PEERS` (``variant`` None), taking clips ``(B, frames, 3, img_size, img_size)``."""

    model: str
    variant: str | None
    frames: int
    img_size: int

    @property
    def label(self) -> str:
        return PEERS[self.model][3] if self.variant is None else f"{self.model} {self.variant}"

    def to_dict(self) -> dict:
        return asdict(self)

    def clips(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Random input clips ``(batch, frames, 3, img_size, img_size)``."""
        return torch.randn(batch, self.frames, 3, self.img_size, self.img_size, device=device)


def peer(name: str, img_size: int) -> Contender:
    """The :class:`Contender` of a peer at its config's frame count."""
    if name not in PEERS:
        raise ConfigError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    return Contender(name, None, PEERS[name][2], img_size)


class _LogitsOnly(nn.Module):
    """Wraps a Hugging Face video classifier: ``clips (B, T, C, H, W)`` -> logits ``(B, K)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=clips).logits


def _build_peer(contender: Contender) -> nn.Module:
    try:
        import transformers
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"peer {contender.model!r} needs Hugging Face transformers: pip install transformers "
            "(or pip install 'laps[peers]')"
        ) from exc
    config_name, model_name, _, _ = PEERS[contender.model]
    config = getattr(transformers, config_name)(
        num_frames=contender.frames, image_size=contender.img_size, num_labels=NUM_CLASSES
    )
    return _LogitsOnly(getattr(transformers, model_name)(config))


def build(contender: Contender) -> nn.Module:
    """A freshly initialised model for ``contender`` (``NUM_CLASSES`` outputs)."""
    if contender.variant is None:
        return _build_peer(contender)
    return create_model(
        contender.model, temporal=contender.variant, num_frames=contender.frames,
        num_classes=NUM_CLASSES, img_size=contender.img_size,
    )
