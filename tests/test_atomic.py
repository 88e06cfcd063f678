"""Atomic writes: the umask's file mode, the file flushed before the rename and the folder after."""

import os
import stat

import pytest
import torch

from laps import atomic
from laps.atomic import atomic_path, is_same_file, write_text_atomic
from laps.integrity import save_safetensors


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_file_gets_the_umasks_mode(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "config.json", "{}")
        with atomic_path(tmp_path / "notes.bin") as tmp:
            tmp.write_bytes(b"weights")
        save_safetensors({"w": torch.zeros(2)}, tmp_path / "model.safetensors", {})  # safetensors makes its own file
    finally:
        os.umask(old)
    for name in ("config.json", "notes.bin", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode


def test_file_is_flushed_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else fd))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    write_text_atomic(tmp_path / "summary.json", "{}")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    if os.path.exists("/proc/self/fd"):
        assert os.path.basename(events[0][1]).startswith(".summary.json.")  # the temporary file
        assert events[2][1] == str(tmp_path)  # the folder
    assert (tmp_path / "summary.json").read_text() == "{}"


def test_failed_block_leaves_neither_file(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "a.csv") as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_is_same_file_tells_a_held_file_from_one_replaced_or_removed(tmp_path):
    path = tmp_path / "lock"
    path.write_text("a")
    with open(path) as handle:
        assert is_same_file(handle, path)
        (tmp_path / "new").write_text("b")
        os.replace(tmp_path / "new", path)  # another process's file under the same name
        assert not is_same_file(handle, path)
        path.unlink()
        assert not is_same_file(handle, path)
