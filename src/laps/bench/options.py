"""What ``laps bench model`` can measure: the backbones, variants, metrics and peers it knows, and
:class:`BenchOptions`. Plain data with no torch import, so that ``laps bench --help`` starts fast."""

from __future__ import annotations

from dataclasses import dataclass, field

BACKBONES = ("vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "visformer_small")
#: the variants measured when ``--variants`` is not given (any of :data:`laps.variants.VARIANTS` can be)
DEFAULT_VARIANTS = ("base2d", "ps", "la", "laps", "joint")
METRICS = ("latency", "throughput", "train", "memory", "flops")

#: peer name -> (transformers config class, model class, frames its base config is built for, label)
PEERS: dict[str, tuple[str, str, int, str]] = {
    "timesformer": ("TimesformerConfig", "TimesformerForVideoClassification", 8, "TimeSformer-base (HF)"),
    "videomae": ("VideoMAEConfig", "VideoMAEForVideoClassification", 16, "VideoMAE-base (HF)"),
}


@dataclass
class BenchOptions:
    """What ``laps bench model`` measures; see ``laps bench --help``."""

    backbones: list[str] = field(default_factory=lambda: list(BACKBONES))
    variants: list[str] = field(default_factory=lambda: list(DEFAULT_VARIANTS))
    frames: list[int] = field(default_factory=lambda: [8])
    img_size: int = 224
    batch: int = 4
    repeats: int = 5
    metrics: list[str] = field(default_factory=lambda: list(METRICS))
    peers: list[str] = field(default_factory=list)
    device: str = "cpu"
    compile: bool = False
    cuda_graphs: bool = False

    @classmethod
    def quick(cls, **overrides) -> BenchOptions:
        """vit_tiny at 32 px, 4 frames, batch 2, 2 repeats: a smoke test of seconds."""
        return cls(**{"backbones": ["vit_tiny_patch16_224"], "frames": [4], "img_size": 32,
                      "batch": 2, "repeats": 2, **overrides})
