"""The first hour of a new user: the examples of ``laps COMMAND --help`` and of the README, run as
written (those that run offline and in seconds) in a fresh folder, each with its exit status.

Every command line below is looked up in the text it comes from, so an example that changes
there fails here until it runs again. The files an example names (``video1.mp4``, ``runs/mine``,
``long.mp4``) are made first from the demo's own output; ``runs/mine`` is what the training
example writes.
"""

import importlib.util
import shlex
import shutil
from pathlib import Path

import pytest

from laps.cli import build_parser, main

README = (Path(__file__).parents[1] / "README.md").read_text()

#: (where the example is written, the command line as written, exit status)
EXAMPLES = [
    ("demo", "laps demo --quick", 0),
    ("train", "laps train --list-configs", 0),
    ("train", "laps train --config demo --data-root runs/demo/data --train-list train.txt --val-list val.txt "
              "--output runs/mine", 0),
    ("train", "laps train --config demo --data-root runs/demo/data --train-list train.txt --val-list val.txt "
              "--output runs/mine --resume", 0),
    ("eval", "laps eval --checkpoint runs/demo/laps --data-root runs/demo/data --list val.txt --views 10x3 "
             "--output runs/demo/laps/eval", 0),
    ("predict", "laps predict --checkpoint runs/demo/laps video1.mp4 video2.mp4", 0),
    ("predict", "laps predict --checkpoint runs/mine my_videos/ --output predictions.jsonl", 0),
    ("predict", "laps predict --checkpoint runs/mine long.mp4 --timeline --window 2 --stride 1 --output long_timeline/", 0),
    ("export", "laps export --checkpoint runs/demo/laps --output laps.pt2", 0),
    ("export", "laps export --checkpoint runs/demo/laps --output laps.onnx", 0),
    ("README", "laps flops visformer_small --temporal laps --num-frames 8 --img-size 224", 0),
    ("README", "laps predict --checkpoint runs/mine long.mp4 --timeline --window 2 --stride 1 --output long/", 0),
]


def _help_text(command: str) -> str:
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return action.choices[command].format_help()


def _text(source: str) -> str:
    return " ".join((README if source == "README" else _help_text(source)).split())


def test_every_example_is_written_where_it_is_said_to_be():
    for source, line, _ in EXAMPLES:
        assert line in _text(source), (source, line)


def _inputs(folder: Path) -> None:
    """The files the examples name, made from the demo's output."""
    from laps.data.encoding import write_video
    from laps.data.synthetic_timeline import long_synthetic

    videos = sorted((folder / "runs/demo/data/videos").rglob("*.mp4"))
    shutil.copy(videos[0], folder / "video1.mp4")
    shutil.copy(videos[-1], folder / "video2.mp4")
    (folder / "my_videos").mkdir()
    for video in videos[:3]:
        shutil.copy(video, folder / "my_videos" / video.name)
    frames, _ = long_synthetic([(0, 6.0), (5, 6.0)], size=32, fps=8)
    write_video(folder / "long.mp4", frames, 8)


@pytest.mark.slow  # the demo's two training runs, then every example on their output
def test_the_examples_run_as_written_in_a_fresh_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for source, line, status in EXAMPLES:
        if line.endswith(".onnx") and importlib.util.find_spec("onnxruntime") is None:
            continue  # the [export] extra is not installed
        code = main(shlex.split(line)[1:])
        out, err = capsys.readouterr()
        assert code == status, (line, err[-2000:])
        assert "Traceback" not in err and "error:" not in err, (line, err[-2000:])
        if line == "laps demo --quick":
            assert "input-bound" not in err  # no advice on the worker count the demo chose itself
            _inputs(tmp_path)
        if line.endswith("--resume"):
            assert "has already finished its 8 epochs: nothing to train" in err
    assert (tmp_path / "runs/demo/laps/eval/eval.json").is_file()
    assert len((tmp_path / "predictions.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "long_timeline/timeline.json").is_file() and (tmp_path / "laps.pt2").is_file()
