"""The run lock: held while a run writes, gone when it ends, taken over from a killed run."""

import logging
import os
import subprocess
import sys
from contextlib import nullcontext

import pytest

from laps.engine.run_dir import LOCK, RunLock
from laps.errors import OutputInUse


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("fails", [False, True])
def test_lock_is_removed_when_the_run_ends(tmp_path, fails):
    with pytest.raises(RuntimeError) if fails else nullcontext():
        with RunLock(tmp_path):
            assert (tmp_path / LOCK).exists()
            if fails:
                raise RuntimeError("diverged")
    assert not (tmp_path / LOCK).exists()
    with RunLock(tmp_path):  # and the directory can be locked again
        pass


def test_second_lock_on_the_same_directory_is_refused(tmp_path):
    with RunLock(tmp_path), pytest.raises(OutputInUse, match="another laps train"):
        with RunLock(tmp_path):
            pass


def test_stale_lock_of_a_killed_run_is_taken_over_with_a_message(tmp_path, caplog):
    pid = dead_pid()
    (tmp_path / LOCK).write_text(str(pid))
    with caplog.at_level(logging.WARNING, logger="laps"), RunLock(tmp_path):
        assert (tmp_path / LOCK).read_text() == str(os.getpid())
    assert f"from pid {pid}" in caplog.text
    assert not (tmp_path / LOCK).exists()
