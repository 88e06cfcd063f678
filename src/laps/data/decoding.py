"""Video decoding backends: frame indices in, uint8 RGB frames ``(T, H, W, 3)`` out.

Every backend opens a video as a :class:`VideoReader`, which knows the video's
:class:`VideoInfo` and returns the frames at given indices. Frame ``i`` is the i-th
frame in presentation order (for variable-frame-rate files too). Anything wrong with a
file is raised as :class:`BrokenVideoError` (a :class:`~laps.errors.VideoDecodeError`)
carrying the path and a short reason in words (never FFmpeg's error number).

One judgement of "is this a video" serves every reader of videos (training, eval, predict, the
timeline, the app, ``laps data check``): :func:`open_container` opens a file or stream with PyAV
and :func:`video_stream` refuses what is not a video (a still image, a file with no video stream,
a text file FFmpeg would draw as pictures); :func:`truncation` names a file that holds fewer
frames than its index lists, which every reader refuses.

Backends: ``"pyav"`` (default) and ``"frames"`` (a folder of JPEG/PNG images per video).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
from PIL import Image

from laps.data.mp4_boxes import cut_index
from laps.data.reformat import to_rgb
from laps.errors import ConfigError, VideoDecodeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: the largest frame a video may declare (8K UHD is 33.2 megapixels): a file claiming more is
#: refused before anything is decoded, so a damaged or hostile header cannot make a reader
#: allocate gigabytes
MAX_PIXELS = 36_000_000


class BrokenVideoError(VideoDecodeError):
    """A video that cannot be used; ``path`` and ``reason`` are kept apart for reports."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):  # keep picklable across worker processes
        return type(self), (self.path, self.reason)


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows before decoding: frame count, frame rate (None if unknown), size."""

    num_frames: int
    fps: float | None
    width: int
    height: int


class VideoReader(Protocol):
    """An open video. ``get(indices)`` -> uint8 ``(len(indices), H, W, 3)``, any order, repeats allowed."""

    info: VideoInfo

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


#: FFmpeg's demuxers of single pictures: ``png_pipe``, ``jpeg_pipe``, ``webp_pipe``, ..., ``image2``
STILL_IMAGE_FORMATS = ("image2", "image2pipe")
#: FFmpeg codecs that render text files as pictures
TEXT_CODECS = ("ansi", "bintext", "xbin", "idf")


def av_reason(err: av.error.FFmpegError) -> str:
    """PyAV's error in words, without FFmpeg's error number (``[Errno 1094995529]``)."""
    if isinstance(err, av.error.InvalidDataError):
        return "invalid data"
    if isinstance(err, (av.error.FileNotFoundError, av.error.HTTPNotFoundError)):
        return "not found"
    if isinstance(err, av.error.PermissionError):
        return "permission denied"
    return (err.strerror or type(err).__name__).rstrip(".").lower()


def open_container(source, name: str | os.PathLike | None = None):
    """``av.open(source)`` (a path, a URL PyAV can read, or a binary file object) -> the container;
    what PyAV cannot open raises :class:`BrokenVideoError` naming ``name`` (default: ``source``), an
    mp4 cut before its index included (:func:`~laps.data.mp4_boxes.cut_index`)."""
    try:
        return av.open(source if not isinstance(source, os.PathLike) else str(source))
    except av.error.InvalidDataError:
        reason = cut_index(source) or "not a video: FFmpeg recognises no video format in it"
        raise BrokenVideoError(name or source, reason) from None
    except av.error.FFmpegError as err:
        raise BrokenVideoError(name or source, f"not a video PyAV can open (FFmpeg says: {av_reason(err)})") from None
    except OSError as err:
        raise BrokenVideoError(name or source, f"cannot be read: {err.strerror or type(err).__name__}") from None


def video_stream(container, name: str | os.PathLike):
    """The first video stream of an open container, or :class:`BrokenVideoError` saying what the
    file is instead: a still image, an audio file, a text file, or a file with no video stream."""
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in STILL_IMAGE_FORMATS:
        raise BrokenVideoError(name, "a still image, not a video")
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        if kinds == ["audio"]:
            raise BrokenVideoError(name, "an audio file, not a video")
        raise BrokenVideoError(name, f"no video stream, so not a video (streams: {', '.join(kinds) or 'none'})")
    stream = container.streams.video[0]
    if stream.codec_context.name in TEXT_CODECS:
        raise BrokenVideoError(name, "a text file, not a video (FFmpeg would draw its characters as pictures)")
    return stream


def truncation(stream, packets: int) -> str | None:
    """Why a stream whose file held ``packets`` frame packets is truncated, or None: its index
    (mp4, avi: every frame; mkv, webm: key frames only) lists more frames than the file holds."""
    indexed = len(stream.index_entries)
    return f"truncated: the index lists {indexed} frames, the file holds {packets}" if packets < indexed else None


def check_file(path: Path) -> None:
    """Raise the precise reason a path cannot be a video file (before any decoder sees it)."""
    if not path.exists():
        raise BrokenVideoError(path, "file not found")
    if path.is_dir():
        raise BrokenVideoError(path, "is a folder, not a video file (use backend='frames' for frame folders)")
    if path.stat().st_size == 0:
        raise BrokenVideoError(path, "empty file (0 bytes)")


def _as_indices(indices: Sequence[int] | np.ndarray, num_frames: int) -> np.ndarray:
    """Validate frame indices against the frame count; returns int64 (K,)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        raise IndexError(f"frame indices must lie in [0, {num_frames}), got {idx.min()}..{idx.max()}")
    return idx


class PyAVReader:
    """PyAV reader that decodes from the key frame before the wanted frames up to the last, skipping
    the key-frame intervals in between that no wanted frame needs.

    On open, the packet index is read without decoding: its presentation timestamps, sorted,
    are the frame timestamps (so variable frame rates map exactly), and key-frame timestamps
    tell where decoding can start. ``start``/``end`` (seconds) restrict the video to a window.
    Non-reference frames that are not wanted are skipped by the decoder.
    """

    def __init__(self, path: str | os.PathLike, start: float | None = None, end: float | None = None) -> None:
        self.path = Path(path)
        check_file(self.path)
        self._container = open_container(self.path)
        try:
            self._open_stream(start, end)
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self, start: float | None, end: float | None) -> None:
        stream = self._stream = video_stream(self._container, self.path)
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > MAX_PIXELS:
            raise BrokenVideoError(self.path, f"its frames are declared {width}x{height}, larger than laps decodes "
                                              f"({MAX_PIXELS / 1e6:.0f} megapixels); 'laps data resize' makes it smaller")
        stream.codec_context.thread_count = 1  # parallelism comes from loader workers
        pts, key_pts, packets = self._read_index()
        if reason := truncation(stream, packets):
            raise BrokenVideoError(self.path, reason)
        seconds = pts * float(stream.time_base)
        keep = np.ones(len(pts), dtype=bool)
        if start is not None:
            keep &= seconds >= start
        if end is not None:
            keep &= seconds < end
        self._pts = pts[keep]
        self._key_pts = key_pts
        if len(self._pts) == 0:
            window = "" if start is None and end is None else f" between {start}s and {end}s"
            raise BrokenVideoError(self.path, f"no video frames{window}")
        rate = stream.average_rate or stream.guessed_rate
        self.info = VideoInfo(len(self._pts), float(rate) if rate else None, stream.codec_context.width,
                              stream.codec_context.height)

    def _read_index(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Demux (no decoding) -> sorted timestamps of the shown frames (N,), of the key frames (K,),
        and the packet count. Packets an edit list discards (e.g. lead-in of a stream-copied cut)
        are decoded as references but never shown, so they are not frames; key frames they may be."""
        pts, key_pts, packets = [], [], 0
        try:
            for packet in self._container.demux(self._stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if not packet.size or stamp is None:
                    continue
                packets += 1
                if not packet.is_discard:
                    pts.append(stamp)
                if packet.is_keyframe:
                    key_pts.append(stamp)
        except av.error.FFmpegError as err:
            raise BrokenVideoError(self.path, f"truncated or corrupt container ({av_reason(err)})") from err
        return np.sort(np.asarray(pts, dtype=np.int64)), np.sort(np.asarray(key_pts, dtype=np.int64)), packets

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (presentation order) -> uint8 ``(K, H, W, 3)``."""
        idx = _as_indices(indices, len(self._pts))
        wanted = np.unique(self._pts[idx])
        restarts = self._seek_points(wanted)
        frames = self._decode(wanted, int(restarts[0]), restarts)
        if len(frames) < len(wanted):
            # a key frame the index promised did not start decoding: once more from the first frame
            # (the seek lands on the key frame before it), without skipping any packet
            frames = self._decode(wanted, int(self._pts[0]), np.full(len(wanted), np.iinfo(np.int64).min))
        missing = [p for p in wanted if p not in frames]
        if missing:
            first = int(np.searchsorted(self._pts, missing[0]))
            reason = f"truncated: frame {first} of {len(self._pts)} did not decode" if frames else "no decodable frames"
            raise BrokenVideoError(self.path, reason)
        return np.stack([frames[p] for p in self._pts[idx]])

    def _seek_points(self, wanted: np.ndarray) -> np.ndarray:
        """For each wanted timestamp (K,), that of the last key frame at or before it (or the first frame)."""
        keys = np.concatenate([self._pts[:1], self._key_pts])  # the first frame: where there is no key frame
        return keys[np.searchsorted(self._key_pts, wanted, side="right")]

    def _decode(self, wanted: np.ndarray, seek_pts: int, restarts: np.ndarray) -> dict[int, np.ndarray]:
        """Decode sorted ``wanted`` timestamps (K,) -> {pts: (H, W, 3)}, given the timestamp decoding
        may start from for each (``restarts``, non-decreasing).

        It seeks to the key frame at or before ``seek_pts`` and demuxes in decode order. Packets before the restart
        point of the first wanted frame not yet sent to the decoder are skipped undecoded: nothing
        from a key frame on refers to them, so a clip whose frames lie in different key-frame
        intervals decodes only the intervals' heads it needs. Frames nothing refers to are skipped
        by the decoder itself.
        """
        wanted_list, last = wanted.tolist(), int(wanted[-1])
        wanted_set, restart_list = set(wanted_list), restarts.tolist()
        codec = self._stream.codec_context
        frames: dict[int, np.ndarray] = {}
        sent: set[int] = set()
        pending = 0  # index of the first wanted frame whose packet has not been sent
        try:
            self._container.seek(seek_pts, stream=self._stream, backward=True)
            for packet in self._container.demux(self._stream):
                stamp = packet.pts  # None: the flush packet at the end
                if stamp is not None:
                    while pending < len(wanted_list) and wanted_list[pending] in sent:
                        pending += 1
                    if pending < len(wanted_list) and stamp < restart_list[pending]:
                        continue
                    if stamp in wanted_set:
                        sent.add(stamp)
                codec.skip_frame = "DEFAULT" if stamp is None or stamp in wanted_set else "NONREF"
                for frame in packet.decode():
                    stamp = frame.pts if frame.pts is not None else frame.dts
                    if stamp in wanted_set:
                        frames[stamp] = to_rgb(frame)
                    if stamp is not None and stamp >= last:
                        return frames
        except av.error.FFmpegError as err:
            if not frames:
                raise BrokenVideoError(self.path, f"no decodable frames ({av_reason(err)})") from err
            raise BrokenVideoError(self.path, f"corrupt video data ({av_reason(err)})") from err
        finally:
            codec.skip_frame = "DEFAULT"
        return frames

    def close(self) -> None:
        self._container.close()


class FrameFolderReader:
    """A video stored as a folder of images (sorted by file name); frame i = i-th image."""

    def __init__(self, path: str | os.PathLike, start: float | None = None, end: float | None = None) -> None:
        self.path = Path(path)
        if start is not None or end is not None:
            raise ConfigError(f"{path}: frame folders have no timestamps; drop start/end or use backend='pyav'")
        if not self.path.is_dir():
            reason = "is a file, not a folder of frames" if self.path.exists() else "folder not found"
            raise BrokenVideoError(self.path, reason)
        self._files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise BrokenVideoError(self.path, f"no {'/'.join(IMAGE_SUFFIXES)} frames in folder")
        height, width = self._read(0).shape[:2]
        self.info = VideoInfo(len(self._files), None, width, height)

    def _read(self, i: int) -> np.ndarray:
        try:
            with Image.open(self._files[i]) as image:
                return np.asarray(image.convert("RGB"))
        except OSError as err:
            raise BrokenVideoError(self._files[i], f"unreadable image ({err})") from err

    def get(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` -> uint8 ``(K, H, W, 3)``; each distinct image is read once."""
        idx = _as_indices(indices, len(self._files))
        images = {i: self._read(i) for i in np.unique(idx).tolist()}
        return np.stack([images[i] for i in idx.tolist()])

    def close(self) -> None:
        pass


BACKENDS: dict[str, Callable[..., VideoReader]] = {
    "pyav": PyAVReader,
    "frames": FrameFolderReader,
}


def open_video(path: str | os.PathLike, backend: str = "pyav", start: float | None = None,
               end: float | None = None) -> VideoReader:
    """Open ``path`` with a named backend; ``start``/``end`` (seconds) cut a window (pyav only)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[backend](path, start, end)


def video_info(path: str | os.PathLike, backend: str = "pyav") -> VideoInfo:
    """Frame count, frame rate and size of a video, without decoding frames."""
    reader = open_video(path, backend)
    try:
        return reader.info
    finally:
        reader.close()


def decode_frames(path: str | os.PathLike, indices: Sequence[int] | np.ndarray, backend: str = "pyav") -> np.ndarray:
    """Decode the frames at ``indices`` (presentation order) -> uint8 ``(K, H, W, 3)``."""
    reader = open_video(path, backend)
    try:
        return reader.get(indices)
    finally:
        reader.close()
