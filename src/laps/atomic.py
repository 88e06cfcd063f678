"""Files that appear whole or not at all: written under a temporary name, then renamed into place.

A process killed while writing leaves at most a hidden temporary file (``.NAME.XXXX.suffix``) next
to the real one, never a truncated file under the real name. The file is flushed to disk
(``fsync``) before the rename and the folder after it, so a power cut leaves the old file or the
new one, never an empty one. The file gets the mode any new file gets (``0666`` less the umask:
``0644`` under umask ``022``), so a teammate can read what a run wrote where the umask allows it.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _create_temporary(path: Path) -> Path:
    """Create an empty, unused hidden file next to ``path`` (same suffix) with the umask's mode."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{path.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


def fsync_path(path: str | Path) -> None:
    """Flush a file's or a folder's content to disk (folders: where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # a folder cannot be opened on every platform (Windows)
        if Path(path).is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse to sync a folder
        if not Path(path).is_dir():
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffix, so writers that go by the extension
    still work); if the block succeeds, flush it to disk and rename it onto ``path``, then flush
    the folder; remove it otherwise."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temporary(path)
    mode = os.stat(tmp).st_mode & 0o777  # 0666 less the umask
    try:
        yield tmp
        if os.stat(tmp).st_mode & 0o777 != mode:  # a writer that made its own file (safetensors: 0600)
            os.chmod(tmp, mode)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def is_same_file(handle: IO, path: str | os.PathLike) -> bool:
    """Whether the open ``handle`` is still the file at ``path`` (not removed or replaced meanwhile):
    a lock file held open is only a lock while it is the file others open."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
