"""Every recipe in configs/ loads, validates and builds its model (tiny replacement sizes where the
real one would take too long), so a recipe that rots fails CI."""

from pathlib import Path

import pytest
import torch

import laps
from laps.engine.builders import build_model
from laps.engine.config import load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


def test_the_recipes_are_found():
    assert {p.name for p in CONFIGS} >= {"demo.yaml", "k400_visformer_s_laps.yaml", "k400_vit_b16_laps.yaml"}


def _load(path):
    return load_config(path, ["model.pretrained=", "model.img_size=32", "data.scale_min=32", "data.scale_max=40"])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_loads_and_names_a_known_backbone(path):
    architecture = _load(path).model.backbone.split(".")[0]  # without a pretrained tag
    assert laps.list_models(architecture) == [architecture]


@pytest.mark.slow  # full-size backbones, up to ViT-L
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_builds_its_model(path):
    config = _load(path)
    model = build_model(config, num_classes=3, pretrained=False).eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, config.model.num_frames, model.in_chans, 32, 32))
    assert logits.shape == (1, 3) and model.temporal == config.model.temporal


def test_a_variant_recipe_is_the_laps_recipe_with_another_variant():
    folder = CONFIGS[0].parent
    laps, la = (load_config(folder / f"k400_visformer_s_{v}.yaml") for v in ("laps", "la"))
    assert la.model.temporal == "la" and la.runtime.output == "runs/k400_visformer_s_la"
    la.model.temporal, la.runtime.output = laps.model.temporal, laps.runtime.output
    assert la == laps


def test_the_from_scratch_recipe_is_what_laps_train_does_by_default():
    scratch = load_config(CONFIGS[0].parent / "scratch_small.yaml")
    default = load_config(None)
    for key in ("optimizer", "lr", "weight_decay", "schedule", "warmup_epochs", "label_smoothing", "mixup"):
        assert getattr(scratch.optim, key) == getattr(default.optim, key), key
    assert (scratch.data.scale_min, scratch.data.scale_max, scratch.data.norm) == (None, None, "auto")
    assert scratch.model.pretrained == default.model.pretrained == ""
