from collections import Counter

import numpy as np
import pytest

from laps.data.annotations import load_annotations, load_classes
from laps.data.decoding import decode_frames
from laps.data.synthetic import CLASSES, make_synthetic, synthetic_clip, video_seed
from laps.errors import ConfigError


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("syn") / "a", videos_per_class=5, seed=3, num_frames=8, size=32)


@pytest.mark.parametrize("pair", range(5))
@pytest.mark.parametrize("seed", [0, 12345])
def test_second_class_of_a_pair_is_the_first_reversed(pair, seed):
    forward, backward = synthetic_clip(2 * pair, seed), synthetic_clip(2 * pair + 1, seed)
    assert forward.shape == (16, 64, 64, 3) and forward.dtype == np.uint8
    assert np.array_equal(backward, forward[::-1])
    assert not np.array_equal(forward[0], forward[-1])  # something changes over time


def test_clip_is_deterministic_for_a_seed():
    assert np.array_equal(synthetic_clip(4, 7), synthetic_clip(4, 7))
    assert not np.array_equal(synthetic_clip(4, 7), synthetic_clip(4, 8))


def test_dataset_layout_and_balance(small_dataset):
    assert load_classes(small_dataset / "classes.json") == list(CLASSES)
    train, val = load_annotations(small_dataset / "train.txt"), load_annotations(small_dataset / "val.txt")
    assert train.classes == list(CLASSES)
    assert Counter(r.label for r in train) == {label: 4 for label in range(10)}
    assert Counter(r.label for r in val) == {label: 1 for label in range(10)}
    assert all((small_dataset / r.path).is_file() for r in [*train, *val])


def test_written_videos_hold_the_clips(small_dataset):
    for label in (0, 5, 9):
        name = CLASSES[label]
        frames = decode_frames(small_dataset / f"videos/{name}/{name}_0002.mp4", range(8))
        expected = synthetic_clip(label, video_seed(3, label, 2), num_frames=8, size=32)
        assert np.abs(_luma(frames) - _luma(expected)).mean() < 3  # the plaid lives in luminance
        assert np.abs(frames.astype(int) - expected).mean() < 12  # chroma: half resolution in yuv420p


@pytest.mark.slow  # writes the dataset a second time
def test_dataset_is_deterministic_for_a_seed(small_dataset, tmp_path):
    again = make_synthetic(tmp_path / "b", videos_per_class=5, seed=3, num_frames=8, size=32)
    other = make_synthetic(tmp_path / "c", videos_per_class=5, seed=4, num_frames=8, size=32)
    files = sorted(p.relative_to(small_dataset) for p in small_dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert all((small_dataset / f).read_bytes() == (again / f).read_bytes() for f in files)
    first = "videos/drifting_left/drifting_left_0000.mp4"
    assert (small_dataset / first).read_bytes() != (other / first).read_bytes()


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match="videos_per_class"):
        make_synthetic(tmp_path, videos_per_class=1)
    with pytest.raises(ConfigError, match="even"):
        make_synthetic(tmp_path, size=33)
    with pytest.raises(ConfigError, match="label"):
        synthetic_clip(10, 0)


def _luma(frame: np.ndarray) -> np.ndarray:
    return frame.astype(float) @ np.array([0.299, 0.587, 0.114])


def _best_shift(first: np.ndarray, last: np.ndarray, reach: int = 24) -> tuple[int, int]:
    """The integer (dx, dy) that best explains last[y, x] = first[y + dy, x + dx] (mean squared error)."""
    size, errors = first.shape[0], {}
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            a = last[max(0, -dy):size - max(0, dy), max(0, -dx):size - max(0, dx)]
            b = first[max(0, dy):size + min(0, dy), max(0, dx):size + min(0, dx)]
            errors[dx, dy] = np.mean((a - b) ** 2)
    return min(errors, key=errors.get)


@pytest.mark.parametrize("seed", [1, *(pytest.param(s, marks=pytest.mark.slow) for s in (2, 3))])
def test_each_class_changes_the_way_its_name_says(seed):
    clips = {name: synthetic_clip(label, video_seed(seed, label, 0)) for label, name in enumerate(CLASSES)}
    luma = {name: _luma(clip) for name, clip in clips.items()}
    dx, dy = _best_shift(luma["drifting_left"][0], luma["drifting_left"][-1])
    assert dx >= 8 and dy == 0  # 0.16-0.31 of 64 px to the left
    dx, dy = _best_shift(luma["drifting_down"][0], luma["drifting_down"][-1])
    assert dx == 0 and dy <= -8
    assert luma["fading_in"][0].std() < 1 and luma["fading_in"][-1].std() > 10  # flat, then textured
    detail = {name: np.abs(np.diff(luma[name], axis=2)).mean(axis=(1, 2)) for name in ("focusing", "blurring")}
    assert np.all(np.diff(detail["focusing"]) > 0) and np.all(np.diff(detail["blurring"]) < 0)
    level = luma["brightening"].mean(axis=(1, 2))
    assert np.all(np.diff(level) > 0) and level[-1] - level[0] > 40
