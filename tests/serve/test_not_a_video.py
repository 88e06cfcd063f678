"""One judgement of "is this a video" for predict, the timeline and the app: a still image, a
missing file, an empty folder and a truncated video are refused in words that name the input."""

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
    """A good video, a still image, a half-truncated mp4 (its index at the front) and a missing path."""
    from PIL import Image

    root = tmp_path_factory.mktemp("inputs")
    good = colour_video(root / "good.mp4", [(0, 4.0)])
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(root / "image.png")
    whole = root / "whole.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (64, 32, 32, 3), dtype=np.uint8)
    write_video(whole, frames, 8, gop=8, faststart=True)
    data = whole.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    return {"good": good, "image": root / "image.png", "truncated": root / "truncated.mp4",
            "missing": root / "missing.mp4"}


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
