"""laps: Leap Attention + Periodic Shift video transformers over timm image backbones.

The names below load their module on first use (PEP 562): ``import laps`` alone starts neither
torch nor timm, so the ``laps`` command answers ``--help`` at once.
"""

import importlib

from laps.version import __version__ as __version__

_EXPORTS = {
    "VARIANTS": "laps.variants", "VideoClassifier": "laps.models.video",
    "checkpoint_filter_fn": "laps.models.video", "create_model": "laps.models.factory",
    "lapsify": "laps.models.factory", "list_models": "laps.models.factory",
    "from_pretrained": "laps.models.loading", "push_to_hub": "laps.models.sharing",
    "zero_shot": "laps.openvocab",  # needs open_clip (pip install 'laps[zeroshot]')
    "extract_features": "laps.serve.features",  # the training toolkit's (pip install 'laps[train]')
}
__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'laps' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
