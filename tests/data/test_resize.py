"""``laps data resize``: short side, key frames, resumable, sources untouched, broken files reported."""

import hashlib
from pathlib import Path

import av
import pytest

from laps.cli import main
from laps.data.encoding import write_video
from laps.data.resize import resize_dataset, resized_shape
from laps.errors import DataError

from .conftest import frame_ids, index_frames


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _probe(path: Path) -> tuple[int, int, list[int], list[int]]:
    """(width, height, indices of the key frames, decoded frame ids) of a video."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = [i for i, packet in enumerate(p for p in container.demux(stream) if p.size) if packet.is_keyframe]
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    import numpy as np

    return stream.codec_context.width, stream.codec_context.height, keys, frame_ids(np.stack(frames))


@pytest.fixture
def source(tmp_path):
    """A tree of two 64x48 videos with x264's default key-frame interval, and an empty 'video'."""
    root = tmp_path / "src"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    write_video(root / "a" / "one.mp4", index_frames(40), 10, crf=10)
    write_video(root / "b" / "two.mp4", index_frames(40)[::-1].copy(), 10, crf=10)
    (root / "b" / "empty.mp4").write_bytes(b"")
    return root


def test_resized_shape_scales_the_short_side_down_only():
    assert resized_shape(340, 256, 128) == (170, 128)
    assert resized_shape(256, 340, 128) == (128, 170)
    assert resized_shape(64, 48, 320) == (64, 48)  # never up
    assert resized_shape(101, 75, 32) == (44, 32)  # even sides


def test_folder_is_resized_with_short_key_frame_intervals_and_sources_untouched(source, tmp_path):
    before = _digest(source)
    report = resize_dataset(source, tmp_path / "dst", short_side=32, keyframe_interval=8, workers=2, progress=False)
    assert (report.converted, report.skipped) == (2, 0)
    assert [Path(p).name for p, _ in report.broken] == ["empty.mp4"]
    for name, reverse in (("a/one.mp4", False), ("b/two.mp4", True)):
        width, height, keys, ids = _probe(tmp_path / "dst" / name)
        assert (width, height) == (42, 32)  # 64x48 with short side 32, even
        assert keys[0] == 0 and all(b - a <= 8 for a, b in zip(keys, keys[1:] + [40]))
        assert ids == (list(range(40))[::-1] if reverse else list(range(40)))  # every frame, in order
    assert not list((tmp_path / "dst").rglob("*.part"))
    assert _digest(source) == before


def test_second_run_does_nothing_and_an_interrupted_run_resumes(source, tmp_path):
    dst = tmp_path / "dst"
    resize_dataset(source, dst, short_side=32, keyframe_interval=8, progress=False)
    done = (dst / "a" / "one.mp4").stat().st_mtime_ns
    again = resize_dataset(source, dst, short_side=32, keyframe_interval=8, progress=False)
    assert (again.converted, again.skipped) == (0, 2)
    assert (dst / "a" / "one.mp4").stat().st_mtime_ns == done
    # an interrupted run: one video never finished, another left half-written under its .part name
    (dst / "b" / "two.mp4").unlink()
    (dst / "b" / "two.mp4.part").write_bytes(b"half a video")
    resumed = resize_dataset(source, dst, short_side=32, keyframe_interval=8, progress=False)
    assert (resumed.converted, resumed.skipped) == (1, 1)
    assert _probe(dst / "b" / "two.mp4")[3] == list(range(40))[::-1]
    assert not (dst / "b" / "two.mp4.part").exists()


def test_list_mode_writes_a_new_list_without_the_unreadable_sources(source, tmp_path, capsys):
    listing = source / "train.txt"
    listing.write_text("a/one.mp4 0\nb/two.mp4 1\nb/empty.mp4 1\nb/missing.mp4 0\n")
    dst = tmp_path / "dst"
    assert main(["data", "resize", str(listing), str(dst), "--short-side", "32", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert out.count("BROKEN") == 2 and "resized 2 videos, 0 already done, 2 unreadable" in out
    assert (dst / "train.txt").read_text() == "a/one.mp4 0\nb/two.mp4 1\n"
    assert main(["data", "resize", str(listing), str(dst), "--short-side", "32"]) == 1  # still 2 unreadable
    assert "resized 0 videos, 2 already done" in capsys.readouterr().out


def test_output_inside_the_source_is_refused(source):
    with pytest.raises(DataError, match="outside it"):
        resize_dataset(source, source / "small", progress=False)
    with pytest.raises(DataError, match="outside it"):
        resize_dataset(source, source, progress=False)


def test_long_video_with_b_frames_keeps_every_frame(tmp_path):
    """300 frames of moving content: x264 reorders frames (B-frames); the muxer must still get
    increasing timestamps, and no frame may be lost."""
    from laps.analysis.bench_data import bench_frames
    from laps.data.resize import resize_video

    write_video(tmp_path / "long.mp4", bench_frames(10, 96, 64, 30), 30, crf=23)
    resize_video(tmp_path / "long.mp4", tmp_path / "out.mp4", short_side=32, keyframe_interval=16)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (48, 32)
        assert float(stream.average_rate) == 30
        assert sum(1 for _ in container.decode(stream)) == 300
