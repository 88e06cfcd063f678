import numpy as np
import pytest

from laps.data.sampling import dense_indices, parse_views, sample_indices, segment_indices
from laps.errors import ConfigError, DataError


def test_dense_train_window_is_anywhere_in_the_video():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(500):
        idx = dense_indices(100, 8, 4, train=True, rng=rng)
        assert np.array_equal(np.diff(idx), np.full(7, 4))
        starts.add(int(idx[0]))
    assert starts == set(range(0, 100 - 28))  # span 29 frames -> starts 0..71


def test_dense_test_clips_are_evenly_spaced():
    # 8x8 on 300 frames: span 57, 244 possible starts; clip k starts at floor((k + 0.5) / K * 244)
    assert dense_indices(300, 8, 8, train=False).tolist() == list(range(122, 122 + 57, 8))
    starts = [int(dense_indices(300, 8, 8, train=False, clip_index=k, num_clips=3)[0]) for k in range(3)]
    assert starts == [40, 122, 203]


def test_dense_short_video_clamps_to_last_frame():
    assert dense_indices(20, 8, 8, train=False).tolist() == [0, 8, 16, 19, 19, 19, 19, 19]
    assert dense_indices(1, 4, 2, train=True, rng=np.random.default_rng(0)).tolist() == [0, 0, 0, 0]


def test_segment_test_takes_segment_centres():
    assert segment_indices(80, 8, train=False).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert segment_indices(80, 8, train=False, clip_index=0, num_clips=2).tolist() == [2, 12, 22, 32, 42, 52, 62, 72]


def test_segment_train_draws_one_frame_per_segment():
    rng = np.random.default_rng(0)
    seen = [set() for _ in range(4)]
    for _ in range(300):
        for s, i in enumerate(segment_indices(40, 4, train=True, rng=rng)):
            assert 10 * s <= i < 10 * (s + 1)
            seen[s].add(int(i))
    assert all(len(s) == 10 for s in seen)


def test_segment_short_video_repeats_frames():
    assert segment_indices(3, 8, train=False).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert segment_indices(3, 8, train=True, rng=np.random.default_rng(1)).max() <= 2


def test_sample_indices_dispatch_and_errors():
    assert sample_indices("segment", 80, 8, 99, train=False).tolist() == segment_indices(80, 8, train=False).tolist()
    with pytest.raises(ConfigError, match="unknown sampling"):
        sample_indices("sparse", 80, 8, 8, train=False)
    with pytest.raises(DataError, match="0 frames"):
        dense_indices(0, 8, 8, train=False)
    with pytest.raises(ConfigError, match="clip_index"):
        dense_indices(10, 8, 1, train=False, clip_index=3, num_clips=3)


@pytest.mark.parametrize("spec, expected", [("10x3", (10, 3)), ("1x3", (1, 3)), (" 4 X 1 ", (4, 1)), ((2, 3), (2, 3))])
def test_parse_views(spec, expected):
    assert parse_views(spec) == expected


@pytest.mark.parametrize("spec", ["10", "3x2", "0x1", "ax3", (1, 2, 3)])
def test_parse_views_rejects(spec):
    with pytest.raises(ConfigError):
        parse_views(spec)
