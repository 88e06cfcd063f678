"""Write uint8 RGB frames to an H.264 mp4 with PyAV (synthetic data, tests, benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np

from laps.data.reformat import reformat


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: float = 30.0,
    *,
    crf: int = 23,
    gop: int | None = None,
    pts_seconds: Sequence[float] | None = None,
    faststart: bool = False,
) -> None:
    """Encode frames with libx264 (yuv420p, one encoder thread) into an mp4 file.

    Args:
        frames: uint8 array (T, H, W, 3) in RGB; H and W must be even (yuv420p).
        fps: nominal frame rate.
        crf: x264 constant rate factor (lower = higher quality; 0 = lossless luma).
        gop: maximum key-frame interval in frames (None: x264's default, 250).
        pts_seconds: per-frame presentation times (strictly increasing) to write a
            variable-frame-rate file; None gives a constant 1/fps spacing.
        faststart: put the index (moov atom) at the start of the file.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    options = {"crf": str(crf), "threads": "1"}
    if gop is not None:
        options["g"] = str(gop)
    time_base = Fraction(1, 1000) if pts_seconds is not None else None
    container_options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format="mp4", options=container_options) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # one thread and no threading at all: PyAV's defaults win over the "threads" option, and with
        # them the same frames measurably gave different files (the dataset writer must be exact)
        stream.codec_context.thread_count, stream.codec_context.thread_type = 1, "NONE"
        if time_base is not None:
            stream.codec_context.time_base = time_base
        for i, image in enumerate(frames):
            frame = reformat(av.VideoFrame.from_ndarray(image, format="rgb24"), "yuv420p")
            if time_base is not None:
                frame.pts, frame.time_base = round(pts_seconds[i] * 1000), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
