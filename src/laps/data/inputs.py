"""What a command is given on its command line: one judgement of the paths ``laps predict`` and
``laps features`` take, before anything is loaded or written.

- A path that does not exist is refused (a mistyped name never becomes an output).
- A folder stands for the videos under it (:func:`~laps.data.annotations.find_videos`); a folder
  with none is refused.
- A file with a video suffix is a video (what is wrong inside it is the decoder's to say, per video).
- Any other file is a list of videos when it is text and the command reads lists; otherwise it
  must be a video under another name (``.ts``, no suffix), and is refused here in the decoder's
  words when it is not: a still image, an audio file, a text file.
"""

from __future__ import annotations

import os
from pathlib import Path

from laps.data.annotations import VIDEO_SUFFIXES, find_videos
from laps.data.decoding import open_container, video_stream
from laps.errors import DataError

#: bytes read to tell a text file from a binary one
SNIFF_BYTES = 8192


def is_text(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` starts as UTF-8 text (no NUL byte; a character cut at the end of the sample is fine)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start > len(head) - 4  # only the sample's last character was cut
    return True


def check_video_file(path: str | os.PathLike) -> None:
    """Raise :class:`~laps.data.decoding.BrokenVideoError` (``"img.png: a still image, not a video"``)
    unless FFmpeg opens ``path`` as a file with a video stream."""
    with open_container(path) as container:
        video_stream(container, path)


def judge_input(item: str, lists: bool = False) -> str:
    """What the command-line input ``item`` is: ``"folder"``, ``"video"`` or (with ``lists``)
    ``"list"``, a text file of videos. A missing path raises :class:`DataError`; a file that is
    neither raises the decoder's :class:`~laps.data.decoding.BrokenVideoError`."""
    path = Path(item)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise DataError(f"{item}: no such file or folder; check the path")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if lists and is_text(path):
        return "list"
    check_video_file(path)
    return "video"


def folder_videos(folder: str | os.PathLike) -> list[Path]:
    """The videos under ``folder``, sorted; a :class:`DataError` when there is none."""
    found = find_videos(folder)
    if not found:
        raise DataError(f"{folder}: a folder with no video file in it (looked for {', '.join(VIDEO_SUFFIXES)})")
    return found


def expand_videos(inputs: list[str]) -> list[str]:
    """The video files of ``inputs``: files as given, folders expanded to the videos under them
    (sorted), each judged by :func:`judge_input` (no list files)."""
    paths: list[str] = []
    for item in inputs:
        if judge_input(item) == "folder":
            paths.extend(str(p) for p in folder_videos(item))
        else:
            paths.append(item)
    return paths
