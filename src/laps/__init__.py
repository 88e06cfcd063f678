"""laps: Leap Attention + Periodic Shift video transformers over timm image backbones."""

from laps.models import VARIANTS, VideoClassifier, checkpoint_filter_fn, create_model, lapsify, list_models
from laps.models.loading import from_pretrained
from laps.models.sharing import push_to_hub
from laps.version import __version__

__all__ = ["VARIANTS", "VideoClassifier", "__version__", "checkpoint_filter_fn", "create_model", "from_pretrained", "lapsify",
           "list_models", "push_to_hub"]
