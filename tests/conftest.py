"""Shared fixtures: seeded RNG, tiny models; the quick tests' timeout."""

import pytest
import torch

from tests.helpers import QUICK_TIMEOUT_S


def pytest_collection_modifyitems(items):
    """Quick tests (not marked slow) without a timeout of their own get :data:`QUICK_TIMEOUT_S`;
    slow ones keep the suite's (``timeout`` in pyproject.toml)."""
    for item in items:
        if item.get_closest_marker("slow") is None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(QUICK_TIMEOUT_S))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A tiny synthetic dataset (10 classes, 20 train / 10 val videos, 8 frames of 32 px)."""
    from laps.data import make_synthetic

    return make_synthetic(tmp_path_factory.mktemp("synthetic"), videos_per_class=3, seed=0, num_frames=8, size=32)
