"""Config: YAML + overrides, validation with errors that name the key."""

from pathlib import Path

import pytest

from laps.engine.config import Config, load_config, save_config
from laps.errors import ConfigError


def test_a_list_is_written_in_brackets_and_a_comma_stays_in_a_string():
    config = load_config(None, ["optim.milestones=[2,3]", "data.root=/videos/a,b", "model.pretrained="])
    assert config.optim.milestones == [2, 3] and config.data.root == "/videos/a,b"
    assert config.model.pretrained == ""
    with pytest.raises(ConfigError, match=r"^optim\.milestones: takes a list, written in brackets: \[1,2\]$"):
        load_config(None, ["optim.milestones=2,3"])


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  temporal: la\n  levels: [1, 2, null]\noptim:\n  lr: 0.5\n  epochs: 3\n")
    config = load_config(path, ["optim.lr=0.1", "optim.batch_size=4", "data.flip=false", "optim.milestones=[2, 3]"])
    assert config.model.temporal == "la" and config.model.levels == [1, 2, None]
    assert config.optim.lr == 0.1 and config.optim.epochs == 3 and config.optim.batch_size == 4
    assert config.data.flip is False and config.optim.milestones == [2, 3]


def test_saved_config_round_trips(tmp_path):
    config = load_config(None, {"optim.lr": 0.3, "model.temporal": "ps"})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_the_config_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    save_config(load_config(None), path)
    before = path.read_text()

    write_text = Path.write_text

    def torn(self, text, *args, **kwargs):  # the disk fills up half-way through the file
        write_text(self, text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", torn)
    with pytest.raises(OSError, match="disk full"):
        save_config(load_config(None, {"optim.lr": 0.3}), path)
    monkeypatch.undo()
    assert path.read_text() == before and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["optim.nope=1"], "unknown config key 'optim.nope'"),
        (["epochs=3"], "unknown config key 'epochs'; did you mean optim.epochs?"),
        (["optim.lr=fast"], "optim.lr: Value 'fast' of type 'str' could not be converted to Float"),
        (["optim.epochs=2.5"], "optim.epochs: Value '2.5' of type 'float' could not be converted to Integer"),
        (["model.num_frames=0"], "model.num_frames=0 must be >= 1"),
        (["model.temporal=3d"], "model.temporal='3d' is not allowed"),
        (["data.flip=maybe"], "data.flip: Value 'maybe' is not a valid bool"),
        (["optim.lr"], "key=value"),
        (["optim.milestones=[1,2"], "override optim.milestones: while parsing a flow sequence"),
        (["runtime.output=${oops}"], "runtime.output: Interpolation key 'oops' not found"),
        (["optim.layer_decay=0"], r"optim.layer_decay=0.0 must be in \(0, 1\]"),
        (["data.max_broken_share=1.5"], "data.max_broken_share=1.5 is a share of the split: 0 to 1"),
        (["data.scale_min=300", "data.scale_max=260"], r"data.scale_min \(300\) must be <= data.scale_max \(260\)"),
        (["runtime.log_every_s=-1"], "runtime.log_every_s=-1.0 must be >= 0"),
        (["optim.train=foo"], "optim.train='foo' is not allowed; choose all, head or last:N"),
        (["optim.train=last:0"], "optim.train='last:0' is not allowed"),
        (["optim.train=last:x"], "optim.train='last:x' is not allowed"),
    ],
)
def test_bad_values_give_one_line_errors_naming_the_key(overrides, match):
    with pytest.raises(ConfigError, match=match) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)
    assert load_config(None) == Config()  # a load refused halfway leaves the next one its defaults


@pytest.mark.parametrize("value, blocks", [("all", None), ("head", 0), ("last:1", 1), ("last:12", 12)])
def test_the_trained_part(value, blocks):
    from laps.engine.config import trained_blocks

    assert load_config(None, [f"optim.train={value}"]).optim.train == value
    assert trained_blocks(value) == blocks


@pytest.mark.parametrize("text", ["3e-4", "3.0e-4", "0.0003", "3E-4"])
def test_numbers_in_any_notation_from_a_file_or_a_command_line(tmp_path, text):
    """YAML 1.1 reads 3e-4 as a string; it is a number here, as a user means it."""
    path = tmp_path / "c.yaml"
    path.write_text(f"optim:\n  lr: {text}\n  weight_decay: {text}\n")
    assert load_config(path).optim.lr == load_config(None, [f"optim.lr={text}"]).optim.lr == 3e-4  # not the default
    assert load_config(path).optim.weight_decay == 3e-4


def test_a_recipe_is_its_base_plus_its_own_values(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  temporal: laps\n  num_frames: 16\noptim:\n  lr: 0.2\n")
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "la.yaml").write_text("base: ../base.yaml\nmodel:\n  temporal: la\n")
    config = load_config(tmp_path / "recipes" / "la.yaml", ["optim.lr=0.1"])
    assert (config.model.temporal, config.model.num_frames, config.optim.lr) == ("la", 16, 0.1)
    (tmp_path / "data.yaml").write_text("data:\n  root: /videos\nmodel:\n  num_frames: 4\n")
    (tmp_path / "two.yaml").write_text("base: [base.yaml, data.yaml]\noptim:\n  epochs: 2\n")
    config = load_config(tmp_path / "two.yaml")  # the later base wins, the file's own values over both
    assert (config.model.num_frames, config.data.root, config.optim.lr, config.optim.epochs) == (4, "/videos", 0.2, 2)
    (tmp_path / "base.yaml").write_text("base: recipes/la.yaml\n")
    with pytest.raises(ConfigError, match="is its own base"):
        load_config(tmp_path / "recipes" / "la.yaml")


@pytest.mark.parametrize("base", ["3", "[a.yaml, 3]", "{a: b}"])
def test_a_base_is_a_path_or_a_list_of_paths(tmp_path, base):
    path = tmp_path / "c.yaml"
    path.write_text(f"base: {base}\n")
    with pytest.raises(ConfigError, match="'base:' must be the path of another recipe or a list of them"):
        load_config(path)


def test_bad_yaml_section(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: 3\n")
    with pytest.raises(ConfigError, match="section 'model'"):
        load_config(path)
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("3", 3), (0, 0), (8, 8)])
def test_num_workers_takes_auto_or_a_count(value, expected):
    assert load_config(None, {"data.num_workers": value}).data.num_workers == expected


@pytest.mark.parametrize("value, match", [("many", "must be 'auto' or an integer >= 0"),
                                          ("-1", "must be 'auto' or an integer >= 0"),
                                          ("2.5", "incompatible with type hint 'Union.int, str.'")])
def test_num_workers_rejects_anything_else(value, match):
    with pytest.raises(ConfigError, match=r"^data\.num_workers.*" + match):
        load_config(None, {"data.num_workers": value})


def test_auto_normalisation_follows_the_backbones_weights():
    from laps.engine.builders import config_feed
    from laps.models.feed import norm_presets

    vit = load_config(None, {"model.backbone": "vit_base_patch16_224"})
    assert vit.data.norm == "auto" and config_feed(vit).norm == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    visformer = load_config(None, {"model.backbone": "visformer_small"})
    assert config_feed(visformer).norm == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    preset = load_config(None, {"model.backbone": "visformer_small", "data.norm": "visformer"})
    assert config_feed(preset).norm == norm_presets()["visformer"] == ((0.486, 0.457, 0.407), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_cuda_device_without_a_gpu_is_refused_in_one_line(name, monkeypatch):
    import torch

    from laps.infer.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=f"device {name} was asked for but torch sees no CUDA device"):
        resolve_device(name)
    assert resolve_device("auto") == torch.device("cpu")
