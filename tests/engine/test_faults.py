"""Faults injected into training: NaN losses and inputs, broken and missing videos, bad labels,
and output directories that hold another run or are in use."""

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from laps.engine import checkpoint as ckpt
from laps.engine.trainer import Trainer, train
from laps.errors import DataError, OutputInUse, TooManyBrokenFiles, TrainingDiverged
from tests.helpers import tiny_config


def _rows(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _poison_steps(trainer, steps, where):
    """Make the given global training steps produce NaN: in the input batch or in the loss.

    -> the list that receives a copy of the model's weights as each step begins."""
    calls = {"n": 0}
    weights = []

    def snapshot():
        weights.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    if where == "input":
        normalize = trainer.train_set.normalize

        def poisoned(clips):
            snapshot()
            out = normalize(clips)
            calls["n"] += 1
            return out * float("nan") if calls["n"] - 1 in steps else out

        trainer.train_set.normalize = poisoned
    else:
        class Poisoned(torch.nn.Module):
            def __init__(self, net):
                super().__init__()
                self.net = net

            def forward(self, clips):
                snapshot()
                calls["n"] += 1
                logits = self.net(clips)
                return logits * float("nan") if calls["n"] - 1 in steps else logits

        trainer.net = Poisoned(trainer.net)
    return weights


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["input", "loss"])
def test_non_finite_steps_are_skipped_and_counted(tiny_data, tmp_path, where):
    trainer = Trainer(tiny_config(tiny_data, tmp_path / "run", **{"data.val_list": None, "runtime.progress": True}))
    weights = _poison_steps(trainer, {0, 1, 6}, where)  # 5 steps an epoch: the first two of epoch 1, one in epoch 2
    trainer.fit()
    rows = _rows(tmp_path / "run")
    assert [r["skipped_steps"] for r in rows] == [2, 1]
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in rows)
    for name in (ckpt.LAST, ckpt.BEST):
        assert all(bool(torch.isfinite(t).all()) for t in load_file(tmp_path / "run" / name).values())
    # a skipped step leaves the weights as they were before it; a good step changes them
    assert len(weights) == 10
    assert _same(weights[0], weights[1]) and _same(weights[1], weights[2])  # steps 0 and 1 skipped
    assert _same(weights[6], weights[7])  # step 6 skipped
    assert not _same(weights[2], weights[3]) and not _same(weights[5], weights[6])


@pytest.mark.slow
def test_too_many_non_finite_steps_in_a_row_stop_the_run_naming_the_last_good_checkpoint(tiny_data, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_data, out, **{"optim.max_bad_steps": 3, "optim.epochs": 3}))
    _poison_steps(trainer, set(range(6, 100)), "input")  # from the second step of epoch 2 on
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit()
    message = str(err.value)
    assert "3 optimizer steps in a row" in message and "optim.lr" in message and "fp16" in message
    assert f"the last good checkpoint is {out / ckpt.STATE}" in message
    assert ckpt.load_state(out / ckpt.STATE)["epoch"] == 0  # epoch 1's, untouched
    assert len(_rows(out)) == 1


@pytest.mark.slow
def test_a_model_with_nan_weights_is_never_saved(tiny_data, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_data, out, **{"data.val_list": None, "optim.epochs": 1}))
    step = trainer._optimizer_step

    def corrupting_step():
        stepped = step()
        with torch.no_grad():
            next(trainer.model.parameters()).fill_(float("nan"))  # an update that overflowed
        return stepped

    trainer._optimizer_step = corrupting_step
    with pytest.raises(TrainingDiverged, match="holds NaN or Inf; it was not saved"):
        trainer.fit()
    assert not (out / ckpt.LAST).exists() and not (out / ckpt.BEST).exists() and not (out / ckpt.STATE).exists()


def _copy_data(tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    return data


@pytest.mark.slow
def test_missing_videos_are_reported_before_the_first_step_and_counted(tiny_data, tmp_path, caplog):
    data = _copy_data(tiny_data, tmp_path)
    first = (data / "train.txt").read_text().split()[0]
    (data / first).unlink()
    trainer = Trainer(tiny_config(data, tmp_path / "run", **{"data.max_broken_share": 0.1}))
    assert f"1 of 20 videos do not exist under {data}" in caplog.text and first in caplog.text
    assert trainer.train_set.broken == 1
    trainer.fit()
    assert _rows(tmp_path / "run")[-1]["broken_files"] == 1


def test_a_list_with_too_many_missing_videos_stops_before_training(tiny_data, tmp_path):
    data = _copy_data(tiny_data, tmp_path)
    gone = [line.split()[0] for line in (data / "train.txt").read_text().splitlines()[:2]]
    for path in gone:
        (data / path).unlink()
    with pytest.raises(TooManyBrokenFiles, match=r"2 of 20 videos of the train split \(10.0%\).*max_broken_share=0.05"):
        Trainer(tiny_config(data, tmp_path / "run"))
    assert (tmp_path / "run" / "broken_files.txt").read_text().split() == sorted(gone)


@pytest.mark.slow
def test_broken_videos_past_the_threshold_stop_the_run_with_the_list(tiny_data, tmp_path):
    data = _copy_data(tiny_data, tmp_path)
    broken = [line.split()[0] for line in (data / "train.txt").read_text().splitlines()[:3]]
    for path in broken:
        (data / path).write_bytes(b"not a video")
    out = tmp_path / "run"
    with pytest.raises(TooManyBrokenFiles, match="of 20 videos of the train split") as err:
        Trainer(tiny_config(data, out, **{"data.max_broken_share": 0.1, "optim.epochs": 3})).fit()
    listed = (out / "broken_files.txt").read_text().split()
    assert len(listed) == 3 and set(listed) == set(broken)  # all three found: 3 > 10% of 20
    assert str(out / "broken_files.txt") in str(err.value)


def test_labels_outside_the_class_map_are_an_error_before_training(tiny_data, tmp_path):
    data = _copy_data(tiny_data, tmp_path)
    lines = (data / "train.txt").read_text().splitlines()
    path = lines[0].split()[0]
    (data / "train.txt").write_text("\n".join([f"{path} 12", *lines[1:]]) + "\n")
    with pytest.raises(DataError, match=rf"train.txt: label 12 of {path} is out of range for 10 classes"):
        Trainer(tiny_config(data, tmp_path / "run"))  # the list's reader knows the classes.json beside it

    (data / "train.txt").write_text("\n".join(lines) + "\n")
    classes = json.loads((data / "classes.json").read_text())
    (data / "classes.json").unlink()
    (tmp_path / "five.json").write_text(json.dumps(classes[:5]))  # a class map that is too short
    with pytest.raises(DataError, match=r"train list: 10 videos have labels outside 0..4 \(5 classes\)"):
        Trainer(tiny_config(data, tmp_path / "run", **{"data.classes": str(tmp_path / "five.json"),
                                                        "data.val_list": None}))


@pytest.mark.slow
def test_an_output_directory_with_another_run_is_refused_unless_resume_or_overwrite(tiny_data, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(tiny_data, out, **{"optim.epochs": 1, "data.val_list": None})
    train(config)
    before = (out / ckpt.LAST).read_bytes()
    with pytest.raises(OutputInUse, match="holds another run .*--resume.*--overwrite"):
        train(config)
    assert (out / ckpt.LAST).read_bytes() == before
    (out / "notes.txt").write_text("mine")
    train(tiny_config(tiny_data, out, **{"optim.epochs": 1, "data.val_list": None, "runtime.seed": 1}), overwrite=True)
    assert (out / ckpt.LAST).read_bytes() != before and (out / "notes.txt").read_text() == "mine"
    assert len(_rows(out)) == 1


@pytest.mark.slow
def test_two_trainings_in_one_directory_the_second_refuses(tiny_data, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "laps", "train", "--data-root", str(tiny_data), "--output", str(out),
           "--model", "vit_tiny_patch16_224", "--img-size", "32", "--num-frames", "4", "--batch-size", "2",
           "--train-list", "train.txt", "--epochs", "50", "model.patch_size=16", "model.depth=1",
           "data.scale_min=32", "data.scale_max=36", "data.num_workers=0", "runtime.progress=false"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / ckpt.STATE).exists() and time.time() < deadline:
            time.sleep(0.1)
        second = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"another laps train (pid {first.pid}) is writing to {out}" in second.stderr
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.wait()
