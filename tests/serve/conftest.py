"""A tiny saved LAPS model and a folder of short videos of different lengths for the features tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import laps
from laps.data.encoding import write_video
from laps.data.synthetic import synthetic_clip

FPS = 8
#: video (relative to the folder) -> frames; two share a name in different folders
VIDEOS = {"a/x.mp4": 12, "b/x.mp4": 30, "c.mp4": 44}


def save_feature_model(folder: Path, seed: int) -> Path:
    """Save a 2-block LAPS vit_tiny (32 px, 4 frames, 5 classes) with weights from ``seed`` into ``folder``."""
    torch.manual_seed(seed)
    model = laps.create_model("vit_tiny_patch16_224", num_classes=5, temporal="laps", num_frames=4, img_size=32,
                              patch_size=8, depth=2)
    model.save_pretrained(folder, classes=[f"c{k}" for k in range(5)], sampling_rate=2)
    return folder


@pytest.fixture(scope="session")
def feature_model_dir(tmp_path_factory) -> Path:
    """A save_pretrained folder of :func:`save_feature_model` with seed 0."""
    return save_feature_model(tmp_path_factory.mktemp("model"), seed=0)


@pytest.fixture
def feature_model(feature_model_dir):
    return laps.from_pretrained(feature_model_dir)


@pytest.fixture(scope="session")
def video_folder(tmp_path_factory) -> Path:
    """:data:`VIDEOS` at :data:`FPS` frames a second, 40x48 px."""
    root = tmp_path_factory.mktemp("videos")
    for k, (name, frames) in enumerate(VIDEOS.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        clip = synthetic_clip(k, seed=k, num_frames=frames, size=48)[:, 4:44]
        write_video(root / name, np.ascontiguousarray(clip), fps=FPS)
    return root
