"""A tiny synthetic dataset and a tiny training config shared by the engine tests."""

import pytest

from laps.data import make_synthetic


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), videos_per_class=3, seed=0, num_frames=8, size=32)


