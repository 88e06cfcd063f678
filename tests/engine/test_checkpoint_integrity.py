"""Damaged checkpoints are detected, resume falls back to the previous state, and no file we load
can run code."""

import json
import logging
import shutil

import pytest
import torch

import laps
from laps.cli import main
from laps.engine import checkpoint as ckpt
from laps.engine.config import load_config
from laps.engine.trainer import train
from laps.errors import CheckpointError, ConfigError
from laps.integrity import content_digest
from tests.helpers import tiny_config


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _flip_bit(path):
    """Flip one bit in the middle of the file: inside the tensor data of both formats."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _empty(path):
    path.write_bytes(b"")


DAMAGES = {"truncated": _truncate, "bit-flipped": _flip_bit, "zero-length": _empty}


@pytest.fixture(scope="module")
def two_epoch_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(tiny_config(tiny_data, out))
    return out


def test_content_digest_sees_every_change():
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "groups": [{"lr": 0.1}]}
    digest, size = content_digest(state)
    assert size == 6 * 4
    assert content_digest({"groups": [{"lr": 0.1}], "epoch": 3, "model": {"w": torch.arange(6.0).reshape(2, 3)}})[0] == digest
    changed = [
        {**state, "epoch": 4},
        {**state, "groups": [{"lr": 0.2}]},
        {**state, "model": {"w": torch.arange(6.0).reshape(3, 2)}},  # same bytes, other shape
        {**state, "model": {"w": torch.arange(6.0).reshape(2, 3).double()}},
        {**state, "model": {"v": torch.arange(6.0).reshape(2, 3)}},
    ]
    flipped = state["model"]["w"].clone()
    flipped.view(torch.int32)[0, 1] ^= 1  # one bit of one float
    changed.append({**state, "model": {"w": flipped}})
    assert len({content_digest(c)[0] for c in changed} | {digest}) == len(changed) + 1


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("name", [ckpt.STATE, ckpt.BEST, ckpt.LAST])
def test_damaged_checkpoint_files_are_refused_naming_the_file(two_epoch_run, tmp_path, name, damage):
    run = tmp_path / "run"
    shutil.copytree(two_epoch_run, run)
    DAMAGES[damage](run / name)
    with pytest.raises(CheckpointError) as err:
        if name == ckpt.STATE:
            ckpt.load_state(run / name)
        else:
            laps.from_pretrained(run / name)
    message = str(err.value)
    assert str(run / name) in message and "\n" not in message
    if damage != "truncated":  # a truncated container may already fail to parse; the others must be named as damage
        assert "damaged" in message


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
def test_eval_and_predict_refuse_damaged_weights(two_epoch_run, tiny_data, tmp_path, damage, capsys):
    run = tmp_path / "run"
    shutil.copytree(two_epoch_run, run)
    DAMAGES[damage](run / ckpt.BEST)
    video = next((tiny_data / "videos").rglob("*.mp4"))
    assert main(["predict", "--checkpoint", str(run), str(video)]) == 2
    assert main(["eval", "--checkpoint", str(run), "--data-root", str(tiny_data), "--list",
                 str(tiny_data / "val.txt"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count(str(run / ckpt.BEST)) == 2
    assert not (run / "eval" / "eval.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGES)
def test_resume_falls_back_to_the_previous_state(two_epoch_run, tiny_data, tmp_path, damage, caplog):
    run = tmp_path / "run"
    shutil.copytree(two_epoch_run, run)
    assert ckpt.load_state(run / ckpt.PREVIOUS_STATE)["epoch"] == 0  # epoch 1's state kept beside epoch 2's
    DAMAGES[damage](run / ckpt.STATE)
    with caplog.at_level(logging.WARNING, logger="laps.engine.checkpoint"):
        summary = train(tiny_config(tiny_data, run), resume=True)
    assert "resuming from the previous training state" in caplog.text and str(run / ckpt.STATE) in caplog.text
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (two_epoch_run / "metrics.jsonl").read_text().splitlines()]
    strip = ("wall_time_s", "train_clips_per_s", "data_wait_share")
    assert [{k: v for k, v in r.items() if k not in strip} for r in rows] == \
        [{k: v for k, v in r.items() if k not in strip} for r in expected]  # epoch 2 redone, the same
    assert summary["epochs"] == 2
    assert ckpt.load_state(run / ckpt.STATE)["epoch"] == 1


@pytest.mark.slow
def test_resume_with_both_states_damaged_names_both(two_epoch_run, tiny_data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(two_epoch_run, run)
    _flip_bit(run / ckpt.STATE)
    _empty(run / ckpt.PREVIOUS_STATE)
    with pytest.raises(CheckpointError, match="no training state .* can be resumed") as err:
        train(tiny_config(tiny_data, run), resume=True)
    assert str(run / ckpt.STATE) in str(err.value) and str(run / ckpt.PREVIOUS_STATE) in str(err.value)


class _Payload:
    """Unpickling this creates the marker file: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.slow
def test_a_checkpoint_that_runs_code_is_refused_and_its_payload_never_runs(two_epoch_run, tmp_path, caplog):
    marker = tmp_path / "pwned"
    evil = {"model": {"w": torch.zeros(2)}, "epoch": 0, "hook": _Payload(marker)}
    run = tmp_path / "run"
    shutil.copytree(two_epoch_run, run)
    torch.save(evil, run / ckpt.STATE)
    torch.save(evil, tmp_path / "pretrained.pth")

    with pytest.raises(CheckpointError, match="refused to load training state .*could run code"):
        ckpt.load_state(run / ckpt.STATE)
    with caplog.at_level(logging.WARNING, logger="laps.engine.checkpoint"):
        assert ckpt.load_resume_state(run)["epoch"] == 0  # --resume: refused, then the previous state
    assert "could run code" in caplog.text
    with pytest.raises(CheckpointError, match="refused to load .*pretrained.pth.*could run code"):
        laps.create_model("vit_tiny_patch16_224", num_frames=2, img_size=32, patch_size=16, depth=1,
                          pretrained=str(tmp_path / "pretrained.pth"))
    assert not marker.exists()


def test_config_yaml_that_builds_objects_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"optim:\n  lr: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="evil.yaml.*tag") as err:
        load_config(recipe)
    assert "\n" not in str(err.value)
    assert not marker.exists()
