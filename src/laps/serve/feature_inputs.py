"""What ``laps features`` reads: the videos of its inputs, the ``.npy`` each becomes, and each process's share.

An input is a video file, a folder (every video under it, sorted, recursively) or a list file (any
annotation format laps reads, see :mod:`laps.data.annotations`, or plain lines of paths, labels
optional; paths relative to ``data_root``, by default the list's folder), judged as ``laps predict``
judges its inputs (:func:`laps.data.inputs.judge_input`): a missing path, a folder with no video, a
still image are refused before anything is written. A video's features go to
its path relative to the input it came through, with the suffix ``.npy``: ``clips/a/x.mp4`` found in
the folder ``clips`` becomes ``a/x.npy``, a file given by itself its own name. Two videos that would
share a name are refused before anything runs.

The videos are split between processes in a fixed way, before any of them is skipped as done:
``--shard I/N`` takes every N-th video from the I-th (zero-based), and the ``WORLD_SIZE`` processes
of a ``torchrun`` launch split a shard the same way by their ``RANK``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from laps.data.annotations import default_root, detect_format, load_annotations, read_paths, resolve_path
from laps.data.inputs import folder_videos, judge_input
from laps.errors import ConfigError


@dataclass(frozen=True)
class FeatureInput:
    """One video to extract: ``video`` (the path read), ``name`` (its ``.npy``, relative to the
    output folder, POSIX) and an optional ``start``/``end`` cut in seconds (clip mode only)."""

    video: str
    name: str
    start: float | None = None
    end: float | None = None


def npy_name(relative: str) -> str:
    """The ``.npy`` path of a video path relative to its input: suffix replaced, never outside the
    output folder (a leading ``/`` dropped, ``..`` parts written ``__``)."""
    parts = [("__" if part == ".." else part) for part in PurePosixPath(relative.replace(os.sep, "/")).parts
             if part not in ("/", ".")]
    if not parts:
        raise ConfigError(f"{relative!r} names no video file")
    return str(PurePosixPath(*parts).with_suffix(".npy"))


def _list_records(path: Path, data_root: str | None) -> list[FeatureInput]:
    root = data_root if data_root is not None else str(default_root(path))
    if detect_format(path) == "list":
        return [FeatureInput(resolve_path(root, p), npy_name(p)) for p in read_paths(path)]
    return [FeatureInput(resolve_path(root, r.path), npy_name(r.path), r.start, r.end)
            for r in load_annotations(path, root)]


def list_inputs(inputs: list[str], data_root: str | None = None) -> list[FeatureInput]:
    """The videos of ``inputs`` in order (see the module's docstring); a :class:`ConfigError` when two
    of them would write the same ``.npy``."""
    found: list[FeatureInput] = []
    for item in inputs:
        kind = judge_input(item, lists=True)
        if kind == "folder":
            found.extend(FeatureInput(str(p), npy_name(p.relative_to(item).as_posix())) for p in folder_videos(item))
        elif kind == "list":
            found.extend(_list_records(Path(item), data_root))
        else:
            found.append(FeatureInput(item, npy_name(Path(item).name)))
    if not found:
        raise ConfigError(f"{', '.join(inputs)}: no video listed; give video files, folders of videos or lists of them")
    owners: dict[str, str] = {}
    unique: dict[str, FeatureInput] = {}
    for entry in found:
        other = owners.setdefault(entry.name, entry.video)
        if other != entry.video:
            raise ConfigError(f"{other} and {entry.video} would both write {entry.name}; extract them into "
                              "different --output folders")
        unique.setdefault(entry.video, entry)  # a video listed twice is extracted once
    return list(unique.values())


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not int(match[1]) < int(match[2]):
        raise ConfigError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4 for the first of four), got {text!r}")
    return int(match[1]), int(match[2])


def launch_share() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` of a ``torchrun`` launch; ``(0, 1)`` outside one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def share(inputs: list[FeatureInput], shard: tuple[int, int] = (0, 1), rank: int = 0,
          world: int = 1) -> list[FeatureInput]:
    """This process's videos: every ``shard[1]``-th from ``shard[0]``, of those every ``world``-th from ``rank``."""
    return inputs[shard[0]::shard[1]][rank::world]
