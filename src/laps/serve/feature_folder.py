"""What a features folder holds and who is writing it.

**Its settings** (``settings.json``, written once by the first run): the identity of the weights
(:func:`laps.integrity.content_digest` of the model's state dict, the checksum laps writes into its
checkpoints), the mode (clip or window), ``views`` or ``window`` and ``stride``, the frames of a
clip, their sampling rate and crop size, and ``dtype``. A run with other settings is refused in
one line naming each difference, since it would skip every video done before and leave features
of two kinds in one folder. With ``overwrite`` it first removes what the folder's index lists
(the ``.npy`` files of its records, the index, the settings) and nothing else.

**Its runs** (``.running/``): every process writing the folder registers a file there, held under
a POSIX lock (``lockf``) for as long as it runs, naming its pid and host, its inputs (a digest of
the list) and its share of them. The videos a process takes are those at positions ``i`` with
``i % step == first`` (``--shard I/N`` and the ``torchrun`` rank: ``first = I + N * RANK``,
``step = N * WORLD_SIZE``). A new run is refused while a live one holds any of its videos: a
second identical command, or one with other inputs or settings. The ranks of one ``torchrun``
and the jobs of one ``--shard`` split hold disjoint shares and run side by side. The registration
and the check are made under the index lock; the file of a killed process (its lock gone with it)
is removed by the next run, and the last process to leave removes the lock file as well.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from laps.atomic import atomic_path
from laps.errors import OutputInUse
from laps.integrity import content_digest
from laps.models import VideoClassifier
from laps.serve.feature_index import INDEX_NAME, drop_lock, index_lock, read_index

SETTINGS_NAME, RUNNING = "settings.json", ".running"


def folder_settings(model: VideoClassifier, *, views: str, window: float | None, stride: float | None,
                    dtype: str) -> dict[str, Any]:
    """The settings of a run: what decides the features it writes (see the module's docstring)."""
    feed, clip = model.video_cfg, window is None
    return {"weights_sha256": content_digest(model.state_dict())[0], "mode": "clip" if clip else "window",
            "views": views if clip else None, "window": window, "stride": stride,
            "num_frames": feed.num_frames, "sampling_rate": feed.sampling_rate if clip else None,
            "img_size": feed.img_size, "dtype": dtype}


def _mode(settings: dict[str, Any]) -> str:
    if settings.get("mode") == "window":
        return f"window mode --window {settings['window']:g} --stride {settings['stride']:g}"
    return f"clip mode --views {settings.get('views')}"


def differences(held: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """What ``wanted`` changes from ``held``, in words: ``["--dtype float16 (it holds float32)", ...]``."""
    named = {"num_frames": "frames", "img_size": "size", "dtype": "--dtype"}
    found = []
    if held.get("weights_sha256") != wanted["weights_sha256"]:
        found.append(f"other weights (sha256 {wanted['weights_sha256'][:12]}, it holds "
                     f"{str(held.get('weights_sha256'))[:12]})")
    if _mode(held) != _mode(wanted):
        found.append(f"{_mode(wanted)} (it holds {_mode(held)})")
    else:  # the sampling rate is of clip mode: named with the mode when that changes
        named["sampling_rate"] = "sampling rate"
    found.extend(f"{label} {wanted[key]} (it holds {held.get(key)})" for key, label in named.items()
                 if held.get(key) != wanted[key])
    return found


def inputs_digest(videos: list[str]) -> str:
    """A short digest of the full input list, before any split."""
    return hashlib.sha256("\n".join(videos).encode()).hexdigest()[:16]


def _clear(folder: Path) -> None:
    """Remove what ``folder``'s index lists (its ``.npy`` files, then the folders they leave empty), the index and the settings."""
    root = folder.resolve()
    emptied = set()
    for entry in read_index(folder).values():
        path = (folder / entry["file"]).resolve() if entry.get("file") else None
        if path is not None and root in path.parents:
            path.unlink(missing_ok=True)
            emptied.update(parent for parent in path.parents if root in parent.parents)
    for parent in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
    (folder / INDEX_NAME).unlink(missing_ok=True)
    (folder / SETTINGS_NAME).unlink(missing_ok=True)


def _settle(folder: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Check ``settings`` against those ``folder`` holds (see the module's docstring); record them
    when it holds none."""
    path = folder / SETTINGS_NAME
    held = json.loads(path.read_text()) if path.exists() else None
    if held == settings:
        return
    if held is None and not (folder / INDEX_NAME).exists():
        found = []
    elif held is None:
        found = ["its index has no record of the settings it was written with"]
    else:
        found = differences(held, settings)
    if found and not overwrite:
        raise OutputInUse(f"{folder} holds features of other settings: {'; '.join(found)}. Write these into "
                          "another --output folder, or give --overwrite to replace the features it holds")
    if found:
        _clear(folder)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=1) + "\n")


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two shares ``{"first", "step"}`` of one input list hold a video in common."""
    return (a["first"] - b["first"]) % math.gcd(a["step"], b["step"]) == 0


def _live_runs(running: Path) -> Iterator[dict[str, Any]]:
    """The registrations of live runs in ``running``; a killed run's file (unlocked) is removed."""
    for path in sorted(running.glob("*.json")):
        with open(path, "a+") as handle:
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                try:
                    yield json.loads(handle.read())
                except json.JSONDecodeError:  # being written by a process that registers right now
                    yield {}
                continue
            path.unlink()


def _conflict(folder: Path, mine: dict[str, Any], other: dict[str, Any]) -> OutputInUse | None:
    if other.get("settings") == mine["settings"] and other.get("inputs") == mine["inputs"] \
            and "first" in other and not _overlap(mine, other):
        return None
    who = f"pid {other.get('pid', '?')} on {other.get('host', '?')}"
    return OutputInUse(f"another laps features ({who}) is writing {folder} and holds videos of this run; wait for "
                       "it to end or give another --output (to split the videos between processes, give each "
                       "--shard I/N, or use torchrun)")


def _register(running: Path, entry: dict[str, Any]) -> tuple[Path, IO[str]]:
    running.mkdir(exist_ok=True)
    path = running / f"{entry['host']}-{entry['pid']}.json"
    handle = open(path, "a+")
    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    handle.write(json.dumps(entry))
    handle.flush()
    return path, handle


@contextmanager
def writing(folder: str | os.PathLike, settings: dict[str, Any], videos: list[str], share: tuple[int, int],
            overwrite: bool = False) -> Iterator[None]:
    """Hold ``folder`` for a run of ``settings`` over the share ``(first, step)`` of ``videos`` (the
    full input list) for the length of the block (see the module's docstring): :class:`OutputInUse`
    when another live run holds any of the same videos or the folder holds features of other
    settings (unless ``overwrite``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    running = folder / RUNNING
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "settings": settings, "inputs": inputs_digest(videos),
            "first": share[0], "step": share[1]}
    with index_lock(folder):
        try:
            for other in _live_runs(running) if running.is_dir() else ():
                if (refusal := _conflict(folder, mine, other)) is not None:
                    raise refusal
            _settle(folder, settings, overwrite)
            path, handle = _register(running, mine)
        except BaseException:
            _leave(folder)
            raise
    try:
        yield
    finally:
        with index_lock(folder):
            path.unlink()
            handle.close()
            _leave(folder)


def _leave(folder: Path) -> None:
    """Remove the registrations folder and the lock file when no live run is left (under the index lock)."""
    running = folder / RUNNING
    if not running.is_dir() or not any(True for _ in _live_runs(running)):
        shutil.rmtree(running, ignore_errors=True)
        drop_lock(folder)
