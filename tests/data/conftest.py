"""Small generated videos for the data tests: index-coloured clips and every kind of broken file."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from laps.data.encoding import write_video
from tests.helpers import INDEX_FRAMES, index_frames


@pytest.fixture(scope="session")
def index_video(tmp_path_factory) -> Path:
    """40 index-coloured frames at 10 fps with a key frame every 8 frames (B-frames on)."""
    path = tmp_path_factory.mktemp("videos") / "index.mp4"
    write_video(path, index_frames(INDEX_FRAMES), 10, crf=10, gop=8)
    return path


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture(scope="session")
def broken_videos(tmp_path_factory) -> dict[str, Path]:
    """One file per broken kind (missing, empty, truncated, text, audio-only, undecodable, still
    images) in one folder."""
    root = tmp_path_factory.mktemp("broken")
    good = root / "faststart.mp4"
    write_video(good, index_frames(24), 10, gop=8, faststart=True)
    data = good.read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    payload = data.index(b"mdat") + 4  # overwrite every coded frame with noise
    noise = np.random.default_rng(0).integers(0, 256, len(data) - payload, dtype=np.uint8).tobytes()
    (root / "undecodable.mp4").write_bytes(data[:payload] + noise)
    (root / "empty.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("this is not a video\n" * 10)
    _audio_only(root / "audio.mp4")
    for suffix in ("png", "jpg"):
        Image.fromarray(index_frames(1)[0]).save(root / f"image.{suffix}")
    names = {"missing": "missing.mp4", "empty": "empty.mp4", "truncated": "truncated.mp4", "text": "text.mp4",
             "audio_only": "audio.mp4", "undecodable": "undecodable.mp4", "png": "image.png", "jpeg": "image.jpg"}
    return {kind: root / name for kind, name in names.items()}
