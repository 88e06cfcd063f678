"""A tiny synthetic dataset and a tiny training config shared by the engine tests."""

import pytest

from laps.data import make_synthetic
from laps.engine.config import load_config


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), videos_per_class=3, seed=0, num_frames=8, size=32)


def tiny_config(data_dir, output, **overrides):
    return load_config(None, {
        "model.backbone": "vit_tiny_patch16_224", "model.img_size": 32, "model.patch_size": 16, "model.depth": 1,
        "model.num_frames": 4, "data.root": str(data_dir), "data.train_list": "train.txt", "data.val_list": "val.txt",
        "data.sampling_rate": 2, "data.scale_min": 32, "data.scale_max": 36, "data.num_workers": 0,
        "data.flip": False, "optim.epochs": 2, "optim.batch_size": 4, "optim.lr": 1e-3,
        "runtime.output": str(output), "runtime.progress": False, **overrides,
    })
