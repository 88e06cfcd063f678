"""laps: Leap Attention + Periodic Shift video transformers over timm image backbones."""

from laps.models import VARIANTS, VideoClassifier, create_model, lapsify, list_models

__version__ = "0.1.0"
__all__ = ["VARIANTS", "VideoClassifier", "__version__", "create_model", "lapsify", "list_models"]
