"""Video data pipeline: annotations -> frame indices -> decoded frames -> transforms -> batches.

The names below load their module on first use (PEP 562), so that importing one light module of
the package (``laps.data.annotations``, say) does not start PyAV.
"""

import importlib

_EXPORTS = {
    "Annotations": "annotations", "VideoRecord": "annotations", "default_root": "annotations", "find_file": "annotations",
    "load_annotations": "annotations", "load_classes": "annotations", "save_classes": "annotations",
    "check_dataset": "check", "check_video": "check",
    "VideoDataset": "dataset", "build_loader": "dataset", "set_epoch": "dataset",
    "BrokenVideoError": "decoding", "VideoInfo": "decoding", "decode_frames": "decoding", "open_video": "decoding",
    "video_info": "decoding",
    "dense_indices": "sampling", "parse_views": "sampling", "segment_indices": "sampling",
    "make_synthetic": "synthetic", "synthetic_clip": "synthetic",
    "TestTransform": "transforms", "TrainTransform": "transforms",
}
__all__ = sorted([*_EXPORTS, "SYNTHETIC_CLASSES"])


def __getattr__(name: str):
    if name == "SYNTHETIC_CLASSES":
        return importlib.import_module("laps.data.synthetic").CLASSES
    if name not in _EXPORTS:
        raise AttributeError(f"module 'laps.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"laps.data.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
