"""A training run's output directory: never clobbered, never written by two processes.

- A directory that holds another run (a training state, weights or metrics rows) is refused unless
  the run is resumed (``--resume``) or replaced (``--overwrite``, which removes the files laps wrote
  there and nothing else).
- A run stopped before it finished its first epoch (Ctrl-C) leaves no training state and no metrics
  rows: running the same command again starts it over, and so does ``--resume`` (with a warning).
  ``--resume`` on a directory that holds no run at all is refused, and creates nothing.
- :class:`RunLock` holds an exclusive lock on ``DIR/.lock`` while a run writes to ``DIR``: a second
  ``laps train`` pointed at the same directory refuses to start instead of interleaving its
  checkpoints with the first one's. It is a POSIX record lock (``lockf``), owned by the process
  alone: it dies with the process, and the loader processes it forks do not inherit it (they would
  otherwise hold it for a moment after their parent was killed). The file holds the owner's pid and
  is removed when the run ends; the file a killed run leaves behind is taken over, with a message
  that names the pid. Two runs of one process are kept apart by a set of held directories.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import IO

from laps.atomic import is_same_file
from laps.engine import checkpoint as ckpt
from laps.errors import CheckpointError, OutputInUse

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, the directory check still applies
    fcntl = None

logger = logging.getLogger(__name__)

LOCK = ".lock"
_HELD: set[Path] = set()  # run directories this process holds
METRICS, SUMMARY, FLOPS, CURVES, BROKEN = "metrics.jsonl", "summary.json", "flops.json", "curves.png", "broken_files.txt"
#: files that mark a directory as holding a run
RUN_MARKERS = (ckpt.STATE, ckpt.PREVIOUS_STATE, ckpt.BEST, ckpt.LAST, METRICS, SUMMARY)
#: everything a run writes (what ``--overwrite`` removes)
RUN_FILES = (*RUN_MARKERS, FLOPS, CURVES, BROKEN, ckpt.CONFIG, ckpt.MODEL_CONFIG)


def _holds(path: Path) -> bool:
    """Whether ``path`` marks a run: it exists, and, the metrics, holds a row (a run stopped in its
    first epoch leaves an empty metrics.jsonl)."""
    return path.exists() and (path.name != METRICS or path.stat().st_size > 0)


def can_resume(out: Path) -> bool:
    """For ``--resume``: whether ``out`` holds a training state to continue (True), or only what a
    run stopped before the end of its first epoch left there (False: the caller starts it over).
    :class:`CheckpointError` where ``out`` holds no run at all; nothing is created."""
    if any((out / name).is_file() for name in (ckpt.STATE, ckpt.PREVIOUS_STATE)):
        return True
    if not any((out / name).exists() for name in RUN_FILES):
        what = "holds no run" if out.is_dir() else "does not exist"
        raise CheckpointError(f"--resume: {out} {what}; start without --resume")
    logger.warning("%s holds no training state (its run stopped before the end of its first epoch): "
                   "starting the run over", out)
    return False


def run_mode(out: Path, resume: bool, overwrite: bool) -> tuple[bool, bool]:
    """(resume, overwrite) of a run asked for with these flags: a ``--resume`` of a run that never
    finished an epoch (:func:`can_resume`) starts it over, replacing what it left."""
    return (False, True) if resume and not can_resume(out) else (resume, overwrite)


def claim_output(out: Path, resume: bool, overwrite: bool) -> None:
    """Check that a new run may write to ``out`` (refuse another run's directory unless resuming or
    overwriting); remove the files of a previous run with ``overwrite``, and those a run left
    before it finished an epoch."""
    if resume:
        return
    present = [name for name in RUN_MARKERS if _holds(out / name)]
    if present and not overwrite:
        raise OutputInUse(
            f"output directory {out} holds another run ({', '.join(present)}); continue it with --resume, "
            "replace it with --overwrite, or pick another --output"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "tensorboard", ignore_errors=True)



class RunLock:
    """Exclusive lock on a run directory for the length of a ``with`` block."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK
        self._file = None

    def _refuse(self, holder: str) -> OutputInUse:
        return OutputInUse(f"another laps train (pid {holder}) is writing to {self.path.parent}; wait for it to "
                           "end or pick another --output")

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = self.path.parent.resolve()
        if key in _HELD:
            raise self._refuse(str(os.getpid()))
        if fcntl is not None:
            self._file = self._acquire()
        _HELD.add(key)
        self._key = key
        return self

    def _acquire(self) -> IO[str]:
        """Open and lock ``DIR/.lock`` and write this process's pid into it -> the open file."""
        while True:
            handle = open(self.path, "a+")
            try:
                fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise self._refuse(holder) from None
            if not is_same_file(handle, self.path):
                handle.close()  # the file was removed by the run that ended meanwhile: lock the next one
                continue
            handle.seek(0)
            stale = handle.read().strip()
            if stale:
                logger.warning("taking over %s from pid %s, which ended without removing it", self.path, stale)
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            return handle

    def __exit__(self, *exc: object) -> None:
        _HELD.discard(self._key)
        if self._file is not None:
            self.path.unlink(missing_ok=True)  # removed while locked, so no other run holds it
            self._file.close()  # closing releases the lock
            self._file = None
