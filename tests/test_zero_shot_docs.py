"""docs/zero_shot.md as a new user runs it: every ``laps`` line of its examples that uses the local
folder ``clip_b16`` runs as written, in a fresh folder, and exits 0. The folder holds a tiny open_clip
model here (the docs' snippet saves a B/16; its layout is tested in tests/models/test_zero_shot.py)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY_OPEN_CLIP, save_open_clip

pytest.importorskip("open_clip")
DOC = (Path(__file__).parents[1] / "docs" / "zero_shot.md").read_text()


def local_examples() -> list[str]:
    """The ``laps`` lines of the doc's bash blocks that use ``clip_b16``, less ``laps app`` (it serves
    until stopped) and ``laps train`` (a recipe on the Hub)."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("laps ") and "clip_b16" in line
            and not line.startswith(("laps app", "laps train"))]


def test_the_doc_has_local_examples_of_every_command():
    commands = {line.split()[1] for line in local_examples()}
    assert commands == {"predict", "eval", "features", "search"}


@pytest.mark.slow  # every command of the doc in its own process, as a user types them
def test_the_local_examples_run_as_written(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_open_clip(TINY_OPEN_CLIP, tmp_path / "clip_b16")
    videos = sorted((Path(tiny_data) / "videos").rglob("*.mp4"))
    Path("videos").mkdir()
    for video in videos[:3]:
        shutil.copy(video, Path("videos") / video.name)
    shutil.copy(videos[0], "my_video.mp4")
    Path("classes.txt").write_text("dancing\ncooking\njuggling\n")
    Path("my_templates.txt").write_text("a video of a person {}.\na person {} in a video.\n")
    Path("data/ucf101").mkdir(parents=True)
    for index, video in enumerate(videos[:3]):
        shutil.copy(video, Path("data/ucf101") / video.name)
    Path("data/ucf101/test.txt").write_text("".join(f"{v.name} {i}\n" for i, v in enumerate(videos[:3])))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                         os.environ.get("PYTHONPATH", "")])}
    for line in local_examples():
        run = subprocess.run([sys.executable, "-m", "laps", *shlex.split(line)[1:]], capture_output=True, text=True,
                             env=env, timeout=600)
        assert run.returncode == 0, (line, run.stderr[-2000:])
        assert "Traceback" not in run.stderr, (line, run.stderr[-2000:])
    assert Path("zs_eval/eval.json").is_file() and Path("feats/index.jsonl").is_file()
