"""Where an mp4 / mov file keeps its index, read from its top-level box headers (ISO BMFF).

An mp4 is a sequence of boxes: ``ftyp`` first, the coded frames in ``mdat``, and the index FFmpeg
needs before it can find any frame in ``moov``. Files written without ``-movflags +faststart``
(laps's own included) put ``moov`` after ``mdat``. Two failures follow, which FFmpeg reports only
as "invalid data":

- a file cut short (a copy or an upload that stopped) has lost its index: :func:`cut_index`;
- such a file streamed through a pipe cannot be read, since its frames have gone by before the
  index that locates them arrives: :func:`index_after_frames`, on the first bytes kept by
  :class:`StreamHead`.
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

_HEADER = struct.Struct(">I4s")
_LARGE = struct.Struct(">Q")
#: how many first bytes of a stream :class:`StreamHead` keeps
HEAD_BYTES = 1 << 16


def top_level_boxes(file: BinaryIO, size: int) -> list[tuple[str, int, int]]:
    """(type, offset, length) of each top-level box whose header lies within ``file`` (seekable),
    which holds the first bytes of a file of ``size`` bytes; stops at bytes that are no box header."""
    boxes: list[tuple[str, int, int]] = []
    offset = 0
    while True:
        file.seek(offset)
        header = file.read(_HEADER.size + _LARGE.size)
        if len(header) < _HEADER.size:
            return boxes
        length, kind = _HEADER.unpack_from(header)
        if length == 1 and len(header) == _HEADER.size + _LARGE.size:
            length = _LARGE.unpack_from(header, _HEADER.size)[0]
        elif length == 0:  # the last box: it runs to the end of the file
            length = size - offset
        if length < _HEADER.size or not all(32 <= byte < 127 for byte in kind):
            return boxes
        boxes.append((kind.decode("ascii"), offset, length))
        offset += length


def _truncation(file: BinaryIO, size: int) -> str | None:
    """Why an mp4 / mov of ``size`` bytes, whose first bytes ``file`` holds, has no usable index."""
    boxes = top_level_boxes(file, size)
    if not boxes or boxes[0][0] != "ftyp":
        return None
    kinds = [kind for kind, _, _ in boxes]
    kind, offset, length = boxes[-1]
    missing = "" if "moov" in kinds else ", and its index (moov box) is missing"
    if offset + length > size:
        return f"truncated: the file ends at byte {size:,}, inside its {kind} box (bytes {offset:,} to {offset + length:,}){missing}"
    if missing and offset + length == size:
        return "truncated: the file holds no index (moov box)"
    return None


class StreamHead:
    """A stream that cannot seek (a pipe), read through, keeping its first :data:`HEAD_BYTES` bytes
    and counting the rest. It has no ``seek``: PyAV reads it front to back, and names the container
    ``name``."""

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self.raw = raw
        self.name = name
        self.head = bytearray()
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.read_bytes += len(data)
        return data


def cut_index(source: object) -> str | None:
    """Why ``source`` (a path, or a :class:`StreamHead` read to its end), an mp4 / mov that FFmpeg
    could not open, is truncated (it ends inside a box, or before its index), or None."""
    if isinstance(source, StreamHead):
        return _truncation(io.BytesIO(bytes(source.head)), source.read_bytes)
    if not isinstance(source, (str, os.PathLike)) or not os.path.isfile(source):
        return None
    with open(source, "rb") as file:
        return _truncation(file, os.fstat(file.fileno()).st_size)


def index_after_frames(head: bytes) -> bool:
    """Whether the first bytes of an mp4 / mov put its frames (``mdat``) before its index (``moov``)."""
    kinds = [kind for kind, _, _ in top_level_boxes(io.BytesIO(head), len(head) + 1)]
    return bool(kinds) and kinds[0] == "ftyp" and "mdat" in kinds and "moov" not in kinds[: kinds.index("mdat")]
