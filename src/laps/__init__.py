"""laps: Leap Attention + Periodic Shift video transformers over timm image backbones."""

from laps.models import VARIANTS, VideoClassifier, checkpoint_filter_fn, create_model, lapsify, list_models
from laps.models.hub import from_pretrained, push_to_hub

__version__ = "0.1.0"
__all__ = ["VARIANTS", "VideoClassifier", "__version__", "checkpoint_filter_fn", "create_model", "from_pretrained", "lapsify",
           "list_models", "push_to_hub"]
