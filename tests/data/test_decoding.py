
import av
import numpy as np
import pytest
from PIL import Image

from laps.data.check import check_video
from laps.data.decoding import BrokenVideoError, decode_frames, open_video, video_info
from laps.data.encoding import write_video
from laps.errors import ConfigError, VideoDecodeError
from tests.helpers import frame_ids, index_frames


@pytest.mark.parametrize("indices", [
    [0, 1, 2],
    [5, 13, 21, 29],  # across key frames
    [39],  # last frame only: starts at its key frame
    [30, 2, 2, 17, 39, 0],  # any order, repeats
    list(range(40)),
])
def test_decoded_frames_are_the_requested_ones(index_video, indices):
    frames = decode_frames(index_video, indices)
    assert frames.shape == (len(indices), 48, 64, 3) and frames.dtype == np.uint8
    assert frame_ids(frames) == indices


def test_reader_serves_several_requests(index_video):
    video = open_video(index_video)
    try:
        assert frame_ids(video.get([35, 36])) == [35, 36]
        assert frame_ids(video.get([3])) == [3]  # seeks back
    finally:
        video.close()


def test_video_info(index_video):
    info = video_info(index_video)
    assert (info.num_frames, info.fps, info.width, info.height) == (40, 10.0, 64, 48)


def test_variable_frame_rate_maps_indices_through_timestamps(tmp_path):
    gaps = np.tile([0.02, 0.3, 0.05, 0.11], 5)[:19]
    path = tmp_path / "vfr.mp4"
    write_video(path, index_frames(20), 10, crf=10, pts_seconds=np.concatenate([[0.0], np.cumsum(gaps)]))
    indices = [0, 3, 4, 10, 11, 19]  # i / fps would land on other frames
    assert video_info(path).num_frames == 20
    assert frame_ids(decode_frames(path, indices), 20) == indices


def test_edit_list_lead_in_frames_are_not_counted(index_video, tmp_path):
    """A stream-copied cut keeps the frames before the cut point as discarded references."""
    path = tmp_path / "cut.mp4"
    with av.open(str(index_video)) as source, av.open(str(path), "w") as target:
        stream = target.add_stream_from_template(source.streams.video[0])
        shift = 2 * round(1 / (10 * source.streams.video[0].time_base))  # cut two frames: frame 2 is no key frame
        for packet in source.demux(video=0):
            if packet.dts is not None:
                packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, stream
                target.mux(packet)
    with av.open(str(path)) as cut:
        assert any(packet.is_discard for packet in cut.demux(video=0))
    assert video_info(path).num_frames == 38
    assert frame_ids(decode_frames(path, [0, 1, 37])) == [2, 3, 39]


def test_start_end_window(index_video):
    video = open_video(index_video, start=1.0, end=2.0)  # 10 fps: frames 10..19
    try:
        assert video.info.num_frames == 10
        assert frame_ids(video.get([0, 9])) == [10, 19]
    finally:
        video.close()
    with pytest.raises(BrokenVideoError, match="no video frames between"):
        open_video(index_video, start=10.0)


def test_out_of_range_indices(index_video):
    with pytest.raises(IndexError, match=r"\[0, 40\)"):
        decode_frames(index_video, [40])


@pytest.mark.parametrize("kind, reason", [
    ("missing", "file not found"),
    ("empty", "empty file (0 bytes)"),
    ("truncated", "truncated"),
    ("text", "not a video: FFmpeg recognises no video format in it"),
    ("audio_only", "an audio file, not a video"),
    ("png", "a still image, not a video"),
    ("jpeg", "a still image, not a video"),
    ("undecodable", "no decodable frames"),
])
def test_broken_kinds_have_precise_reasons(broken_videos, kind, reason):
    assert reason in check_video(str(broken_videos[kind]))
    with pytest.raises(VideoDecodeError, match=str(broken_videos[kind].name)):
        decode_frames(broken_videos[kind], [0, 5])


def test_no_reason_carries_ffmpegs_error_number(broken_videos):
    reasons = [check_video(str(path)) for path in broken_videos.values()]
    assert all(reason and "Errno" not in reason and "1094995529" not in reason for reason in reasons), reasons


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_still_image_is_refused_in_one_line_by_name(broken_videos, kind):
    path = broken_videos[kind]
    with pytest.raises(VideoDecodeError) as err:
        video_info(path)
    assert str(err.value) == f"{path}: a still image, not a video"


def test_broken_video_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(BrokenVideoError("a.mp4", "empty file")))
    assert (err.path, err.reason, str(err)) == ("a.mp4", "empty file", "a.mp4: empty file")


def test_frame_folder_backend(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(index_frames(12)):
        Image.fromarray(frame).save(folder / f"img_{i:05d}.png")
    assert video_info(folder, "frames").num_frames == 12
    assert frame_ids(decode_frames(folder, [11, 0, 5, 5], "frames"), 12) == [11, 0, 5, 5]
    with pytest.raises(BrokenVideoError, match="folder not found"):
        video_info(tmp_path / "nope", "frames")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BrokenVideoError, match="no .* frames"):
        video_info(tmp_path / "empty", "frames")


def test_pyav_rejects_a_folder(tmp_path):
    with pytest.raises(BrokenVideoError, match="backend='frames'"):
        video_info(tmp_path)


def test_unknown_backend(index_video):
    with pytest.raises(ConfigError, match="unknown video backend"):
        video_info(index_video, "ffmpeg-cli")


@pytest.mark.parametrize("gop", [pytest.param(1, marks=pytest.mark.slow), 4, pytest.param(16, marks=pytest.mark.slow)])
def test_clips_across_key_frame_intervals_are_bit_exact(tmp_path, gop):
    """Frames spread over several key-frame intervals (the reader jumps over the intervals in
    between): every pixel equals a plain decode of the whole file, for every spacing."""
    from laps.bench.data import bench_frames

    path = tmp_path / f"gop{gop}.mp4"
    write_video(path, bench_frames(3, 64, 48, 30), 30, crf=23, gop=gop)
    with av.open(str(path)) as container:
        everything = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    rng = np.random.default_rng(0)
    video = open_video(path)
    try:
        for spacing in (1, 3, 8, 11):
            for _ in range(3):
                start = int(rng.integers(0, len(everything) - 7 * spacing))
                indices = start + spacing * np.arange(8)
                np.testing.assert_array_equal(video.get(indices), everything[indices])
    finally:
        video.close()
