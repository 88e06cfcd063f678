"""Shared fixtures: seeded RNG, tiny models."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A tiny synthetic dataset (10 classes, 20 train / 10 val videos, 8 frames of 32 px)."""
    from laps.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), videos_per_class=3, seed=0, num_frames=8, size=32)
