"""Config: YAML + overrides, validation with errors that name the key."""

import pytest

from laps.engine.config import config_from_dict, load_config, save_config
from laps.errors import ConfigError


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  temporal: la\n  levels: [1, 2, null]\noptim:\n  lr: 0.5\n  epochs: 3\n")
    config = load_config(path, ["optim.lr=0.1", "batch_size=4", "data.flip=false", "milestones=2,3"])
    assert config.model.temporal == "la" and config.model.levels == [1, 2, None]
    assert config.optim.lr == 0.1 and config.optim.epochs == 3 and config.optim.batch_size == 4
    assert config.data.flip is False and config.optim.milestones == [2, 3]


def test_saved_config_round_trips(tmp_path):
    config = load_config(None, {"optim.lr": 0.3, "model.temporal": "ps"})
    save_config(config, tmp_path / "config.yaml")
    import yaml

    assert config_from_dict(yaml.safe_load((tmp_path / "config.yaml").read_text())) == config


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["optim.nope=1"], "unknown config key 'optim.nope'"),
        (["lr=fast"], "optim.lr must be a number"),
        (["epochs=2.5"], "optim.epochs must be an integer"),
        (["num_frames=0"], "model.num_frames=0 must be >= 1"),
        (["temporal=3d"], "model.temporal='3d' is not allowed"),
        (["flip=maybe"], "data.flip must be true or false"),
        (["optim.lr"], "key=value"),
    ],
)
def test_bad_values_give_one_line_errors_naming_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)


def test_bad_yaml_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: 3\n")
    with pytest.raises(ConfigError, match="section 'model'"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("3", 3), (0, 0), (8, 8)])
def test_num_workers_takes_auto_or_a_count(value, expected):
    assert load_config(None, {"data.num_workers": value}).data.num_workers == expected


@pytest.mark.parametrize("value", ["many", "-1", "2.5"])
def test_num_workers_rejects_anything_else(value):
    with pytest.raises(ConfigError, match=r"data.num_workers=.* must be 'auto' or an integer >= 0"):
        load_config(None, {"data.num_workers": value})
