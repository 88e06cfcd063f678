"""``laps data resize``: short side, key frames, resumable, sources untouched, broken files reported."""

import hashlib
from pathlib import Path

import av
import pytest

from laps.cli import main
from laps.data.encoding import write_video
from laps.data.resize import resize_dataset, resized_shape
from laps.errors import DataError
from tests.helpers import frame_ids, index_frames


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
    assert "empty.mp4: empty file (0 bytes)" in out and "Errno" not in out  # the words of `laps data check`
    assert (dst / "train.txt").read_text() == "a/one.mp4 0\nb/two.mp4 1\n"
    assert main(["data", "resize", str(listing), str(dst), "--short-side", "32"]) == 1  # still 2 unreadable
    assert "resized 0 videos, 2 already done" in capsys.readouterr().out


def test_output_inside_the_source_is_refused(source):
    with pytest.raises(DataError, match="outside it"):
        resize_dataset(source, source / "small", progress=False)
    with pytest.raises(DataError, match="outside it"):
        resize_dataset(source, source, progress=False)


def test_long_video_with_b_frames_keeps_every_frame(tmp_path):
    """120 frames of moving content: x264 reorders frames (B-frames); the muxer must still get
    increasing timestamps, and no frame may be lost."""
    from laps.bench.data import bench_frames
    from laps.data.resize import resize_video

    write_video(tmp_path / "long.mp4", bench_frames(4, 96, 64, 30), 30, crf=23)
    resize_video(tmp_path / "long.mp4", tmp_path / "out.mp4", short_side=32, keyframe_interval=16)
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (48, 32)
        assert float(stream.average_rate) == 30
        assert sum(1 for _ in container.decode(stream)) == 120


def _x264_options(path: Path) -> dict[str, str]:
    """The encoder settings x264 writes into the first packet (a user-data SEI)."""
    import re

    with av.open(str(path)) as container:
        first = next(bytes(p) for p in container.demux(video=0) if p.size)
    text = re.search(rb"options: ([^\x00]*)", first).group(1).decode()
    return dict(option.split("=", 1) for option in text.split())


@pytest.mark.parametrize("fast_decode", [True, False])
def test_prepared_stream_has_skippable_b_frames_and_cheap_decoding(tmp_path, fast_decode):
    """Three B-frames that nothing refers to between reference frames; the default also turns off
    CABAC and deblocking (x264's fastdecode), --compact keeps them."""
    from laps.bench.data import bench_frames
    from laps.data.resize import resize_video

    write_video(tmp_path / "src.mp4", bench_frames(2, 96, 64, 30), 30, crf=23)
    resize_video(tmp_path / "src.mp4", tmp_path / "out.mp4", keyframe_interval=16, fast_decode=fast_decode)
    options = _x264_options(tmp_path / "out.mp4")
    assert (options["bframes"], options["b_pyramid"], options["b_adapt"], options["keyint"]) == ("3", "0", "0", "16")
    assert (options["cabac"], options["deblock"].split(":")[0]) == (("0", "0") if fast_decode else ("1", "1"))
    with av.open(str(tmp_path / "out.mp4")) as container:
        types = "".join(" IPB"[int(frame.pict_type)] for frame in container.decode(video=0))
    assert "BBBB" not in types and types.count("B") >= len(types) // 2, types


@pytest.mark.slow
def test_a_killed_run_leaves_no_partial_video_and_resumes(tmp_path):
    """SIGKILL a real ``laps data resize`` (pool included) right after its first video is done:
    every file under its final name is complete, and a second run finishes the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from laps.bench.data import bench_frames

    source, dst = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    frames = bench_frames(5, 96, 64, 30)
    for i in range(8):
        write_video(source / f"v{i}.mp4", frames[i:], 30, crf=23)
    before = _digest(source)
    command = [sys.executable, "-m", "laps", "data", "resize", str(source), str(dst), "--workers", "1"]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(dst.glob("*.mp4")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in dst.glob("*.mp4"))
    assert 1 <= len(finished) < 8, finished  # killed mid-way
    for name in finished:
        with av.open(str(dst / name)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 150 - int(name[1])
    assert subprocess.run(command, capture_output=True).returncode == 0
    assert sorted(p.name for p in dst.glob("*.mp4")) == [f"v{i}.mp4" for i in range(8)]
    assert not list(dst.glob("*.part"))
    with av.open(str(dst / "v7.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 143
    assert _digest(source) == before
