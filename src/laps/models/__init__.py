"""Video models built from timm image backbones."""

from laps.models.factory import create_model, lapsify, list_models
from laps.models.temporal import TemporalAttention, default_levels
from laps.models.video import VideoClassifier, checkpoint_filter_fn
from laps.models.video_config import VideoConfig
from laps.variants import VARIANTS

__all__ = ["VARIANTS", "TemporalAttention", "VideoClassifier", "VideoConfig", "checkpoint_filter_fn", "create_model",
           "default_levels", "lapsify", "list_models"]
