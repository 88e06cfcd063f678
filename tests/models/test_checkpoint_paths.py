"""A path is a path: a ``--checkpoint`` (``laps.from_pretrained``'s source) that looks like a local
path and does not exist is refused as one, never looked up on the Hub; only a bare ``user/name``
with no local folder ``user`` is a Hub id."""

from pathlib import Path

import pytest

import laps
from laps.cli import main
from laps.errors import CheckpointError
from laps.models import sharing

MISSING = "no such run directory, folder or weights file: "


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """A Hub that records the ids asked for and holds none; the test's folder as the current
    folder (with ``runs/`` in it) and as the home folder."""
    asked = []

    def download(repo_id, revision):
        asked.append(repo_id)
        raise CheckpointError(f"{repo_id!r} is not on this test's Hub")

    monkeypatch.setattr(sharing, "_download", download)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "runs" / "e8").mkdir(parents=True)
    return asked


@pytest.mark.parametrize("source", [
    "runs/e9",  # a mistyped run directory whose parent exists
    "./e9", "~/e9", "/no/such/laps/run",  # starts like a path
    "someone/runs/e9",  # more than one separator
    "someone/model.safetensors", "someone/last.safetensors", "someone/config.json",  # a weights or config file
    "e9",  # a bare name
    Path("someone/laps-tiny"),  # a Path is a path
])
def test_a_missing_local_path_is_refused_as_one(offline_hub, source):
    with pytest.raises(CheckpointError) as caught:
        laps.from_pretrained(source)
    assert str(caught.value).startswith(MISSING + str(source)) and offline_hub == []


def test_only_a_bare_user_name_without_such_a_folder_is_a_hub_id(offline_hub):
    with pytest.raises(CheckpointError, match="not on this test's Hub"):
        laps.from_pretrained("someone/laps-tiny")
    assert offline_hub == ["someone/laps-tiny"]
    with pytest.raises(CheckpointError, match=MISSING + "runs/laps-tiny"):  # runs/ is a local folder
        laps.from_pretrained("runs/laps-tiny")
    assert offline_hub == ["someone/laps-tiny"]


def test_a_path_under_home_is_found(offline_hub, tmp_path):
    model = laps.create_model("vit_tiny_patch16_224", num_frames=2, num_classes=2, img_size=32, depth=1, embed_dim=64,
                              num_heads=2)
    model.save_pretrained(tmp_path / "runs" / "e8")
    assert laps.from_pretrained("~/runs/e8").video_cfg == model.video_cfg


@pytest.mark.parametrize("command", [["predict", "x.mp4"], ["eval", "--list", "val.txt"],
                                     ["export", "--output", "x.onnx"], ["app"],
                                     ["features", "--output", "feats", "x.mp4"]])
def test_every_command_says_so_in_one_line_with_exit_2(offline_hub, capsys, command):
    Path("val.txt").write_text("a.mp4 0\n")  # eval finds its list before it loads the model
    Path("x.mp4").write_bytes(b"\0" * 64)  # predict and features find their input before they load the model
    assert main([command[0], "--checkpoint", "runs/e9", *command[1:]]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"error: {MISSING}runs/e9; check the path" in lines[0], lines
