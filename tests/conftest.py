"""Shared fixtures: seeded RNG, tiny models."""

import pytest
import torch

TINY_VIT = "vit_tiny_patch16_224"
TINY_VIT_KW = {"img_size": 32, "patch_size": 8}  # 16 tokens + class token per frame


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
