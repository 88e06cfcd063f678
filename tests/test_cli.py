"""The command line: one vocabulary for the same thing in every command."""

import subprocess
import sys

import pytest

from laps.cli import build_parser
from laps.cli.common import CHECKPOINT_HELP

#: modules too heavy to start before argparse has read the command line
HEAVY = ("torch", "timm", "av", "matplotlib", "fvcore", "tensorboard", "open_clip")

def _commands(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_no_command_shows_an_old_name():
    for name, command in _commands(build_parser()).items():
        shown = command.format_help()
        for old in ("--frames ", "--batch ", "--out ", "--num_frames"):
            assert old not in shown, (name, old)




def test_every_checkpoint_option_names_the_four_forms():
    commands = _commands(build_parser())
    with_checkpoint = {name for name, command in commands.items()
                       if any("--checkpoint" in action.option_strings for action in command._actions)}
    assert {"eval", "predict", "export", "app"} <= with_checkpoint
    for name in with_checkpoint:
        action = next(a for a in commands[name]._actions if "--checkpoint" in a.option_strings)
        assert action.help == CHECKPOINT_HELP, name
    for form in ("run directory", "save_pretrained folder", ".safetensors", "Hub id"):
        assert form in CHECKPOINT_HELP


def test_help_imports_no_heavy_library():
    """``laps --help`` and every ``laps CMD --help`` build the parser without torch, timm, PyAV,
    matplotlib or fvcore: the command line answers at once."""
    script = f"""
import sys
from laps.cli import build_parser
parser = build_parser()
action = next(a for a in parser._actions if a.dest == "command")
texts = [parser.format_help(), *(command.format_help() for command in action.choices.values())]
loaded = [name for name in {HEAVY!r} if name in sys.modules]
print(",".join(loaded))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_a_config_mistake_is_refused_before_torch_loads():
    """A mistyped recipe or key is refused as fast as a `laps data` error: before torch and timm load."""
    script = f"""
import sys
from laps.cli import main
codes = [main(["train", "--config", "demoo"]), main(["train", "--config", "demo", "optim.epocs=3"])]
print(codes, [name for name in {HEAVY!r} if name in sys.modules])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[2, 2] []", result.stderr
    assert "demoo" in result.stderr and "optim.epocs" in result.stderr


def test_a_stop_signal_is_printed_as_a_stop_not_an_error(monkeypatch, capsys):
    from laps.cli import main, train
    from laps.errors import Preempted

    def stopped(args):
        raise Preempted("stopped by SIGTERM after epoch 2; run the same command with --resume to continue")

    monkeypatch.setattr(train, "run_train", stopped)
    assert main(["train"]) == 75
    err = capsys.readouterr().err
    assert err.startswith("laps train: stopped by SIGTERM after epoch 2") and "error" not in err


def test_counts_agree_with_their_noun():
    from laps.cli.common import counted
    from laps.serve.timeline_plot import truth_summary

    assert [counted(n, "segment") for n in (0, 1, 2)] == ["0 segments", "1 segment", "2 segments"]
    one = [{"start": 0.0, "end": 4.0, "label": "a"}]
    assert truth_summary(one, one).startswith("1 segment found, 1 true")


def test_predictions_file_is_flushed_before_its_rename(tmp_path, monkeypatch):
    import os

    from laps import atomic
    from laps.cli.predict import PredictionLog

    synced = []
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")))
    with PredictionLog(str(tmp_path / "p.jsonl")) as log:
        log.write({"path": "a.mp4", "top": []})
    assert synced == [str(tmp_path / "p.jsonl.partial"), str(tmp_path)]
    assert (tmp_path / "p.jsonl").read_text() == '{"path": "a.mp4", "top": []}\n'


@pytest.mark.parametrize("argv", [["eval", "--checkpoint", "m", "--list", "l"], ["predict", "--checkpoint", "m", "v.mp4"],
                                  ["features", "--checkpoint", "m", "v.mp4", "--output", "o"]])
def test_eval_predict_and_features_pin_their_threads_as_training_does(argv, monkeypatch):
    """They run with the cores this process may use as torch's thread count, and give the count back."""
    import importlib

    import torch

    from laps.cli import main

    command = importlib.import_module(f"laps.cli.{argv[0]}")
    seen = []
    monkeypatch.setattr(command, f"run_{argv[0]}", lambda args: seen.append(torch.get_num_threads()) or 0)
    monkeypatch.setattr("laps.data.cores.cores_per_process", lambda: 3)
    before = torch.get_num_threads()
    assert main(argv) == 0
    assert seen == [3] and torch.get_num_threads() == before


def test_every_device_flag_has_one_vocabulary_and_default_auto():
    from laps.infer.device import DEVICE_HELP

    commands = build_parser()._subparsers._group_actions[0].choices
    devices = {name: next(a for a in sub._actions if a.dest == "device") for name, sub in commands.items()
               if name != "train" and any(a.dest == "device" for a in sub._actions)}
    assert {"eval", "predict", "features", "bench", "app"} <= set(devices)
    assert {(a.default, a.help) for a in devices.values()} == {("auto", DEVICE_HELP)}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "--checkpoint", "m", "v.mp4", "--device", "gpu"])
    # train's --device sets runtime.device, whose default and check are the same
    from laps.engine.config import RuntimeConfig
    from laps.errors import ConfigError

    assert RuntimeConfig().device == "auto"
    with pytest.raises(ConfigError, match="device 'gpu' is not one of"):
        RuntimeConfig(device="gpu")
