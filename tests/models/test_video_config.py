"""``model.video_cfg``: the one declared config of a video model, given at construction, written by
``save_pretrained`` as ``config.json`` and read back by ``laps.from_pretrained``; and the submodules
every ``TemporalAttention`` declares for its base class."""

import dataclasses
import json

import pytest
import timm
import torch

import laps
from laps.errors import CheckpointError, ConfigError
from laps.models import TemporalAttention, VideoConfig

TINY = {"img_size": 32, "patch_size": 16, "depth": 1, "embed_dim": 64, "num_heads": 2}
#: config.json of a save_pretrained folder, key for key as the writer lays it out
WRITTEN = {
    "laps_version": "0.1.0", "backbone": "vit_tiny_patch16_224", "temporal": "laps", "num_frames": 4,
    "levels": [1], "fold_div": 4, "timm_kwargs": {"img_size": 32, "depth": 1}, "num_classes": 2, "img_size": 32,
    "classes": ["a", "b"], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "interpolation": "bicubic",
    "sampling_rate": 4, "sampling": "dense", "head": "linear", "projection": None,
}


def _tiny(**overrides):
    arguments = {"temporal": "laps", "num_frames": 4, "num_classes": 3, "levels": [2], "fold_div": 8, **TINY}
    return laps.create_model("vit_tiny_patch16_224", **{**arguments, **overrides})


def test_create_model_gives_the_model_its_architecture_and_how_to_feed_it():
    cfg = _tiny().video_cfg
    assert (cfg.backbone, cfg.temporal, cfg.num_frames, cfg.num_classes, cfg.levels, cfg.fold_div) == \
        ("vit_tiny_patch16_224", "laps", 4, 3, (2,), 8)
    assert cfg.timm_kwargs == TINY and cfg.img_size == 32
    # vit_tiny's timm weights (augreg) were fed with mean = std = 0.5 and bicubic resizing
    assert (cfg.mean, cfg.std, cfg.interpolation) == ((0.5,) * 3, (0.5,) * 3, "bicubic")
    assert (cfg.classes, cfg.sampling_rate, cfg.sampling) == (None, None, "dense")
    assert cfg.class_names == ["class_0", "class_1", "class_2"]


def test_lapsify_gives_the_config_of_the_timm_model_it_converts(tmp_path):
    image = timm.create_model("visformer_tiny", img_size=64, num_classes=4, depth=(1, 1, 1))
    visformer = laps.lapsify(image, num_frames=2, temporal="ps")
    cfg = visformer.video_cfg
    # the model's own size, not its pretrained_cfg's 224; no name, since its timm arguments are unknown
    assert (cfg.backbone, cfg.img_size, cfg.num_classes, cfg.temporal, cfg.num_frames) == (None, 64, 4, "ps", 2)
    assert (cfg.mean, cfg.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    vit = laps.lapsify(timm.create_model("vit_tiny_patch16_224", **{**TINY, "img_size": 48}), num_frames=2)
    assert vit.video_cfg.img_size == 48 and vit.video_cfg.mean == (0.5, 0.5, 0.5)
    with pytest.raises(ConfigError, match="build it with laps.create_model"):
        vit.save_pretrained(tmp_path)


def test_the_model_reads_its_architecture_from_video_cfg_and_set_num_frames_records_the_new_length():
    model = _tiny()
    assert (model.temporal, model.num_frames, model.levels, model.fold_div, model.num_classes) == ("laps", 4, [2], 8, 3)
    model.set_num_frames(8)
    assert model.num_frames == model.video_cfg.num_frames == 8
    assert {m.num_frames for m in model.attention_modules} == {8}
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.video_cfg.num_frames = 2


def test_save_pretrained_writes_video_cfg_and_from_pretrained_reads_it_back(tmp_path):
    model = _tiny().eval()
    model.set_num_frames(2)
    model.save_pretrained(tmp_path / "m", classes=["x", "y", "z"], sampling_rate=3)
    written = json.loads((tmp_path / "m" / "config.json").read_text())
    expected = model.video_cfg.updated(classes=["x", "y", "z"], sampling_rate=3)
    assert written == expected.to_dict() and written["num_frames"] == 2 and written["classes"] == ["x", "y", "z"]
    assert model.video_cfg.classes is None  # saving with other values leaves the model's own config alone
    loaded = laps.from_pretrained(tmp_path / "m")
    assert loaded.video_cfg == expected
    clips = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(clips), model(clips))


def test_a_config_json_as_written_is_read_with_every_value():
    cfg = VideoConfig.from_dict(WRITTEN, "config.json")
    assert cfg.to_dict() == WRITTEN
    assert (cfg.levels, cfg.classes, cfg.mean, cfg.sampling_rate) == ((1,), ("a", "b"), (0.5, 0.5, 0.5), 4)


@pytest.mark.parametrize("change, message", [
    ({"backbone": None}, "lacks some of backbone, temporal"),  # a required key left out
    ({"frames": 4}, "keys a laps model config does not know: frames"),
    ({"classes": ["a"]}, "1 class names for a model with 2 classes"),
    ({"sampling": "random"}, "unknown sampling 'random'"),
    ({"std": [0.5]}, "mean has 3 values but std has 1"),
    ({"head": "mlp"}, "unknown head 'mlp'"),
    ({"head": "text"}, "a text head needs its projection width"),
])
def test_a_config_json_that_is_not_one_is_refused_naming_the_file(change, message):
    raw = {key: value for key, value in {**WRITTEN, **change}.items() if value is not None}
    with pytest.raises(CheckpointError, match=message) as caught:
        VideoConfig.from_dict(raw, "somewhere/config.json")
    assert "somewhere/config.json" in str(caught.value)


def test_updated_replaces_only_the_values_given():
    cfg = VideoConfig.from_dict(WRITTEN, "config.json")
    assert cfg.updated(classes=None, sampling_rate=8) == dataclasses.replace(cfg, sampling_rate=8)


@pytest.mark.parametrize("backbone, overrides, token_attention", [
    ("vit_tiny_patch16_224", TINY, True),
    ("eva02_tiny_patch14_224", TINY, True),
    ("visformer_tiny", {"img_size": 32, "depth": (1, 1, 1)}, False),
])
def test_every_temporal_attention_sets_what_the_base_class_declares(backbone, overrides, token_attention):
    declared = set(TemporalAttention.__annotations__)
    assert declared == {"attn_drop", "proj", "proj_drop", "norm", "gate"}
    used = declared if token_attention else {"attn_drop", "proj", "proj_drop"}  # Visformer ends with its own proj
    modules = laps.create_model(backbone, num_frames=2, **overrides).attention_modules
    assert modules and all(hasattr(module, name) for module in modules for name in used)
