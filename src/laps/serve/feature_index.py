"""``index.jsonl`` of a features folder: one JSON record per video, written by every process that
extracts into the folder.

A record is ``{"video", "file", "shape", "status", "error"}``: the video's path as listed, its
``.npy`` relative to the folder (``null`` when it failed), the array's shape, ``"ok"`` or
``"failed"``, and the reason of a failure (``null`` when ok).

Any number of processes share one index (``torchrun`` ranks, ``--shard`` jobs, machines on one
file system): a record is appended as one whole line, flushed and synced, under an exclusive
``flock`` of ``.index.lock`` beside it, taken for that append only. A record that replaces an
earlier one of the same video (a failed video tried again) rewrites the index atomically under the
same lock. Each video belongs to one process, so no two processes ever write records of the same
video (:mod:`laps.serve.feature_folder` refuses a run whose videos another live run holds). The
last process to leave the folder removes ``.index.lock``. A reader keeps the last record of each video and skips a torn line (a process killed while
appending), which the next append first ends with a newline.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from laps.atomic import atomic_path, is_same_file

INDEX_NAME, LOCK_NAME = "index.jsonl", ".index.lock"


@contextmanager
def index_lock(folder: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of ``folder``'s index -> the index's path. The lock file may be
    removed by its holder (:func:`drop_lock`), so a lock taken on a file no longer at its path is
    let go and taken again on the file there now."""
    lock = Path(folder) / LOCK_NAME
    while True:
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if is_same_file(handle, lock):
                    yield lock.with_name(INDEX_NAME)
                    return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def drop_lock(folder: str | Path) -> None:
    """Remove ``folder``'s lock file; only while holding :func:`index_lock`, by the last process
    leaving the folder (a clean run leaves no lock file behind)."""
    (Path(folder) / LOCK_NAME).unlink(missing_ok=True)



def read_index(folder: str | Path) -> dict[str, dict[str, Any]]:
    """video -> its last record in ``folder``'s index (empty when there is none)."""
    path = Path(folder) / INDEX_NAME
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # torn by a killed writer
            continue
        if isinstance(record, dict) and "video" in record:
            records[record["video"]] = record
    return records


def record(video: str, file: str | None = None, shape: tuple[int, ...] | None = None,
           error: str | None = None) -> dict[str, Any]:
    """An index record: ok with ``file`` and ``shape``, failed with ``error``."""
    return {"video": video, "file": file, "shape": None if shape is None else list(shape),
            "status": "failed" if error is not None else "ok", "error": error}


def append_record(folder: str | Path, entry: dict[str, Any]) -> None:
    """Append one record to ``folder``'s index, whole, under its lock."""
    line = json.dumps(entry) + "\n"
    with index_lock(folder) as path, open(path, "ab") as index:
        if index.tell() and not _ends_with_newline(path):
            line = "\n" + line
        index.write(line.encode())
        index.flush()
        os.fsync(index.fileno())


def replace_record(folder: str | Path, entry: dict[str, Any]) -> None:
    """Put ``entry`` in place of every earlier record of its video: the index rewritten atomically, under its lock."""
    with index_lock(folder) as path:
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [line for line in lines if _video_of(line) not in (entry["video"], None)]
        with atomic_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in [*kept, json.dumps(entry)]))


def is_done(entry: dict[str, Any] | None, folder: str | Path, retry_failed: bool = False) -> bool:
    """Whether a video with index record ``entry`` needs no extraction: ok with its file in place,
    or failed (unless ``retry_failed``)."""
    if entry is None:
        return False
    if entry.get("status") == "ok":
        return entry.get("file") is not None and (Path(folder) / entry["file"]).is_file()
    return not retry_failed


def _video_of(line: str) -> str | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return None
    return value.get("video") if isinstance(value, dict) else None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"
