"""A family added in one place: a record registered with ``register_family`` and nothing else
edited. Its models convert, load a 2D checkpoint of another image size, save and load back, give
FSDP its blocks, freeze all but their last blocks, and its normalisation preset is a ``data.norm``."""

import sys
import types

import pytest
import torch
from safetensors.torch import save_file
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer

import laps
from laps.errors import UnsupportedBackboneError
from laps.models import registry, vit
from laps.models.family import Family

MODULE = "laps_fake_family"


class FakeViT(VisionTransformer):
    """A timm model type no built-in family claims first once the fake family is registered."""


def fake_vit_tiny(pretrained: bool = False, **kwargs) -> FakeViT:
    kwargs = {key: value for key, value in kwargs.items() if not key.startswith(("pretrained_cfg", "cache_dir"))}
    return FakeViT(**{"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 3, "num_heads": 2, **kwargs})


FAKE = Family(name="FakeViT", timm_modules=(MODULE,), model_type=FakeViT, convert=vit.FAMILY.convert,
              filter_checkpoint=vit.FAMILY.filter_checkpoint, input_size=vit.FAMILY.input_size,
              block_pattern=vit.FAMILY.block_pattern, norms={"fake": ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))})


@pytest.fixture(scope="module", autouse=True)
def _timm_model():
    """``fake_vit_tiny`` in timm's registry, under a module of its own (timm's registry is global)."""
    sys.modules.setdefault(MODULE, types.ModuleType(MODULE))
    fake_vit_tiny.__module__ = MODULE
    register_model(fake_vit_tiny)


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    monkeypatch.setattr(registry, "FAMILIES", list(registry.FAMILIES))
    registry.register_family(FAKE)


def test_a_registered_family_converts_and_runs():
    assert "fake_vit_tiny" in laps.list_models("fake_*")
    model = laps.create_model("fake_vit_tiny", temporal="laps", num_frames=4, num_classes=3)
    assert model.family is FAKE and len(model.attention_modules) == 3
    assert model(torch.randn(2, 4, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(UnsupportedBackboneError, match="FakeViT"):  # the refusal lists the records
        laps.lapsify(__import__("timm").create_model("resnet18"), num_frames=2)


def test_a_registered_family_loads_another_size_saves_and_loads_back(tmp_path):
    torch.manual_seed(0)
    save_file(fake_vit_tiny(img_size=48, num_classes=3).state_dict(), tmp_path / "image.safetensors")
    model = laps.create_model("fake_vit_tiny", num_frames=2, num_classes=3, pretrained=tmp_path / "image.safetensors")
    assert model.backbone.pos_embed.shape[1] == 1 + (32 // 8) ** 2  # resampled from 48 px by the record's filter
    model.eval().save_pretrained(tmp_path / "saved")
    loaded = laps.from_pretrained(tmp_path / "saved")
    clips = torch.randn(1, 2, 3, 32, 32)
    assert loaded.family is FAKE and torch.equal(loaded(clips), model(clips))


def test_a_registered_family_gives_its_blocks_to_fsdp_and_to_partial_training():
    from laps.engine.builders import config_feed, freeze
    from laps.engine.config import load_config
    from laps.engine.sharding import transformer_blocks

    model = laps.create_model("fake_vit_tiny", num_frames=2, num_classes=3)
    assert transformer_blocks(model) == list(model.backbone.blocks)
    freeze(model, "last:1")
    trained = {name.split(".")[1] for name, p in model.backbone.named_parameters() if p.requires_grad and "blocks" in name}
    assert trained == {"2"}
    config = load_config(None, {"model.backbone": "fake_vit_tiny", "data.norm": "fake"})
    assert config_feed(config).norm == FAKE.norms["fake"]
