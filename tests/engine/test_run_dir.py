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


def test_resume_of_a_missing_directory_is_refused_and_creates_nothing(tiny_data, tmp_path, capsys):
    from laps.cli import main

    out = tmp_path / "missing" / "run"
    assert main(["train", "--config", "demo", "--data-root", str(tiny_data), "--train-list", "train.txt",
                 "--output", str(out), "--resume"]) == 2
    assert "does not exist; start without --resume" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


@pytest.mark.slow
@pytest.mark.parametrize("again", [[], ["--resume"]], ids=["rerun", "resume"])
def test_a_run_interrupted_in_its_first_epoch_can_be_run_again(tiny_data, tmp_path, again):
    """Ctrl-C at batch 2 leaves no training state; the same command (or --resume) starts it over."""
    import json
    import signal

    from tests.engine.test_preemption import ENV, _cmd, _run_and_signal

    out = tmp_path / "run"
    # a shell's background job ignores SIGINT, and so would the run: give it the default handling
    code, err = _run_and_signal(_cmd(tiny_data, out), 1, 2, signal.SIGINT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert code == 130, err[-2000:]
    assert not (out / "state.pt").exists() and (out / "metrics.jsonl").read_text() == ""
    done = subprocess.run(_cmd(tiny_data, out, "runtime.progress=false", *again), check=False, env=ENV,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert (out / "state.pt").exists()
