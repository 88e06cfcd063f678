"""One judgement of "is this a video" for predict, the timeline and the app: a still image, a
missing file, an empty folder and a truncated video are refused in words that name the input."""

import io
import sys

import numpy as np
import pytest

from laps.data.decoding import BrokenVideoError
from laps.data.encoding import write_video
from laps.data.inputs import expand_videos
from laps.errors import DataError
from laps.serve.inference import iter_predictions
from laps.serve.timeline import open_stream, slide
from tests.app.helpers import colour_video, oracle_model
from tests.serve.test_timeline import ColourOracle

TRAINING_WORDS = ("laps data check", "annotation file", "gave up", "Errno")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A good video, a still image, a half-truncated mp4 (its index at the front), one cut before its
    index (at the end, as laps writes them) and a missing path."""
    from PIL import Image

    root = tmp_path_factory.mktemp("inputs")
    good = colour_video(root / "good.mp4", [(0, 4.0)])
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(root / "image.png")
    whole = root / "whole.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    write_video(whole, frames, 8, gop=8, faststart=True)
    data = whole.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    write_video(root / "index_last.mp4", frames, 8, gop=8)
    (root / "cut.mp4").write_bytes((root / "index_last.mp4").read_bytes()[:20000])
    return {"good": good, "image": root / "image.png", "truncated": root / "truncated.mp4",
            "missing": root / "missing.mp4", "cut": root / "cut.mp4", "index_last": root / "index_last.mp4"}


def test_predict_names_what_is_wrong_with_each_input(inputs, tmp_path):
    model = oracle_model(tmp_path)
    paths = [str(inputs[k]) for k in ("good", "image", "truncated", "missing")]
    items = {item["path"]: item for item in iter_predictions(model, paths, "1x1", 3)}
    assert "top" in items[str(inputs["good"])]
    assert items[str(inputs["image"])]["error"] == "a still image, not a video"
    assert items[str(inputs["truncated"])]["error"].startswith("truncated: the index lists 64 frames, the file holds")
    assert items[str(inputs["missing"])]["error"] == "file not found"
    for item in items.values():
        assert not any(word in item.get("error", "") for word in TRAINING_WORDS), item


def test_an_empty_folder_is_named_as_such(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: a folder with no video file in it"):
        expand_videos([str(tmp_path / "empty")])


def test_the_timeline_refuses_a_still_image(inputs):
    with pytest.raises(BrokenVideoError) as err:
        open_stream(str(inputs["image"]))
    assert str(err.value) == f"{inputs['image']}: a still image, not a video"


def test_the_timeline_refuses_a_truncated_video_as_predict_does(inputs, tmp_path):
    with pytest.raises(BrokenVideoError) as err, open_stream(str(inputs["truncated"])) as container:
        slide(ColourOracle(), container, [f"c{k}" for k in range(5)], num_frames=4, img_size=24,
              normalize=lambda clips: clips.float(), window=2.0, stride=1.0, progress=False)
    predicted = next(iter_predictions(oracle_model(tmp_path), [str(inputs["truncated"])], "1x1", 3))
    assert err.value.reason == predicted["error"]


CUT = "truncated: the file ends at byte 20,000, inside its mdat box"


def test_a_video_cut_before_its_index_is_named_truncated(inputs, tmp_path):
    predicted = next(iter_predictions(oracle_model(tmp_path), [str(inputs["cut"])], "1x1", 3))
    assert predicted["error"].startswith(CUT) and "index (moov box) is missing" in predicted["error"]
    with pytest.raises(BrokenVideoError) as err:
        open_stream(str(inputs["cut"]))
    assert err.value.reason == predicted["error"]


class Pipe(io.RawIOBase):
    """The bytes of a file as a pipe gives them: no seeking."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self.data.readinto(buffer)


@pytest.mark.parametrize("kind", ["index_last", "cut", "truncated"])
def test_a_piped_mp4_says_why_it_cannot_be_read(inputs, monkeypatch, kind):
    stdin = type("Stdin", (), {"buffer": io.BufferedReader(Pipe(inputs[kind].read_bytes()))})()
    monkeypatch.setattr(sys, "stdin", stdin)
    with pytest.raises(BrokenVideoError) as err, open_stream("-") as container:
        slide(ColourOracle(), container, [f"c{k}" for k in range(5)], num_frames=4, img_size=24,
              normalize=lambda clips: clips.float(), window=2.0, stride=1.0, progress=False)
    expected = {"index_last": "comes after its frames, so it cannot be read from a pipe: pass the file's path, or "
                              "re-encode it with ffmpeg -movflags +faststart",
                "cut": CUT, "truncated": "truncated: the index lists 64 frames"}[kind]
    assert str(err.value).startswith("standard input: ") and expected in err.value.reason


def test_top_k_below_one_is_refused_in_one_line(inputs, capsys):
    from laps.cli import main

    assert main(["predict", "--checkpoint", "missing-run", str(inputs["good"]), "--top-k", "0"]) == 2
    err = capsys.readouterr().err
    assert err == "laps predict: error: --top-k must be at least 1 (the classes to print for each video), got 0\n"
