"""``model.head_init: text``: training starts from the zero-shot model of the dataset's class names."""

import pytest
import torch

import laps
from laps.engine.builders import build_model, config_feed
from laps.errors import ConfigError
from tests.helpers import TINY_OPEN_CLIP, save_open_clip, tiny_config

open_clip = pytest.importorskip("open_clip")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_open_clip(TINY_OPEN_CLIP, tmp_path_factory.mktemp("open_clip") / "clip")


def text_config(data, out, folder, **overrides):
    return tiny_config(data, out, **{"model.backbone": f"local-dir:{folder}", "model.head_init": "text",
                                     "model.patch_size": None, "model.depth": None, **overrides})


def test_the_model_before_the_first_step_is_the_zero_shot_model(tiny_data, tmp_path, clip_folder):
    from laps.engine.trainer import Trainer

    trainer = Trainer(text_config(tiny_data, tmp_path / "run", clip_folder))
    expected = laps.zero_shot(clip_folder, trainer.classes, temporal="laps", num_frames=4)
    got = trainer.model.state_dict()
    assert got.keys() == expected.state_dict().keys()
    assert all(torch.equal(got[key], value) for key, value in expected.state_dict().items())
    assert trainer.model.video_cfg.head == "text" and trainer.model.training


def test_text_head_configs_feed_as_open_clip_and_rebuild_without_weights(tiny_data, tmp_path, clip_folder):
    config = text_config(tiny_data, tmp_path, clip_folder)
    feed = config_feed(config)
    assert feed.norm == (tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD))
    assert feed.interpolation == "bicubic"
    structure = build_model(config, 3, pretrained=False)
    assert structure.video_cfg.head == "text" and structure.num_classes == 3
    with pytest.raises(ConfigError, match="model.img_size: 32"):
        build_model(text_config(tiny_data, tmp_path, clip_folder, **{"model.img_size": 64, "data.scale_min": 64, "data.scale_max": 72}), 2,
                    classes=["a", "b"])
