"""Video data pipeline: annotations -> frame indices -> decoded frames -> transforms -> batches."""

from laps.data.annotations import (
    Annotations,
    VideoRecord,
    default_root,
    load_annotations,
    load_classes,
    save_classes,
)
from laps.data.check import check_dataset, check_video
from laps.data.dataset import VideoDataset, build_loader, set_epoch
from laps.data.decoding import BrokenVideoError, VideoInfo, decode_frames, open_video, video_info
from laps.data.sampling import dense_indices, parse_views, segment_indices
from laps.data.synthetic import CLASSES as SYNTHETIC_CLASSES
from laps.data.synthetic import make_synthetic, synthetic_clip
from laps.data.transforms import NORMS, TestTransform, TrainTransform

__all__ = [
    "Annotations",
    "BrokenVideoError",
    "NORMS",
    "SYNTHETIC_CLASSES",
    "TestTransform",
    "TrainTransform",
    "VideoDataset",
    "VideoInfo",
    "VideoRecord",
    "build_loader",
    "check_dataset",
    "check_video",
    "decode_frames",
    "default_root",
    "dense_indices",
    "load_annotations",
    "load_classes",
    "make_synthetic",
    "open_video",
    "parse_views",
    "save_classes",
    "segment_indices",
    "set_epoch",
    "synthetic_clip",
    "video_info",
]
