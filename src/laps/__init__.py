"""laps: Leap Attention + Periodic Shift video transformers over timm image backbones.

``laps.extract_features`` (video features for a dataset, :mod:`laps.serve.features`) belongs to the
training toolkit; it is loaded on first use, so that ``import laps`` starts none of it.
"""

import importlib

from laps.models import VARIANTS, VideoClassifier, checkpoint_filter_fn, create_model, lapsify, list_models
from laps.models.loading import from_pretrained
from laps.models.sharing import push_to_hub
from laps.version import __version__

__all__ = ["VARIANTS", "VideoClassifier", "__version__", "checkpoint_filter_fn", "create_model", "extract_features",
           "from_pretrained", "lapsify", "list_models", "push_to_hub"]


def __getattr__(name: str):
    if name == "extract_features":
        return importlib.import_module("laps.serve.features").extract_features
    raise AttributeError(f"module 'laps' has no attribute {name!r}")
