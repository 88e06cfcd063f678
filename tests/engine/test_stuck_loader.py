"""A run whose loader workers are stuck ends: after ``data.loader_timeout`` with one line and the
workers' stacks, or within seconds of SIGTERM; the last checkpoint stays what it was."""

import signal
import subprocess
import sys
import time

import pytest

from laps.engine import checkpoint as ckpt
from laps.errors import LoaderStalled, Preempted
from tests.engine.test_preemption import ENV, FLAGS

#: ``python SCRIPT MARKER laps-args...``: ``laps train`` whose loader workers hang in epoch 2,
#: touching MARKER first
SCRIPT = '''
import os, sys, time
from pathlib import Path
from torch.utils.data import get_worker_info
from laps.cli import main
from laps.data.dataset import VideoDataset

load = VideoDataset.__getitem__

def stuck_in_epoch_two(self, key):  # or, with STUCK=val, in the first validation
    stuck = not self.train if os.environ.get("STUCK") == "val" else key[0] >= 1
    if get_worker_info() is not None and stuck:
        Path(sys.argv[1]).touch()
        time.sleep(3600)
    return load(self, key)

VideoDataset.__getitem__ = stuck_in_epoch_two
sys.exit(main(sys.argv[2:]))
'''
TRAIN = [*FLAGS, "optim.epochs=2", "data.num_workers=2", "runtime.progress=false"]


def _start(tmp_path, data, *extra, env=ENV):
    """The stuck run in a new process group -> (process, marker file, run directory)."""
    (tmp_path / "stuck.py").write_text(SCRIPT)
    marker, out = tmp_path / "stuck", tmp_path / "run"
    cmd = [sys.executable, str(tmp_path / "stuck.py"), str(marker), "train", "--data-root", str(data), "--output",
           str(out), *TRAIN, *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True), marker, out


def _when_stuck(proc, marker) -> float:
    """Wait for a worker to hang -> the time it did."""
    while not marker.exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    return time.monotonic()


def _epoch_one_state(out) -> bool:
    state = ckpt.load_state(out / ckpt.STATE)
    return state["epoch"] == 0 and "resume_at" not in state


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_stuck_loader_ends_the_run_with_one_line_and_the_workers_stacks(tiny_data, tmp_path):
    proc, marker, out = _start(tmp_path, tiny_data, "data.loader_timeout=3")
    stuck = _when_stuck(proc, marker)
    try:
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    ended = time.monotonic() - stuck
    assert proc.returncode == LoaderStalled.exit_code, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("laps train: error: the data loader gave no batch in 3 s from its 2 worker processes "
                           "(their stacks are above)") and "data.loader_timeout" in last, err[-3000:]
    assert err.count("in stuck_in_epoch_two") >= 1 and "Traceback" not in err, err[-3000:]  # a worker's stack
    assert ended < 3 + 15, f"the run ended {ended:.0f} s after its loader hung"
    assert _epoch_one_state(out)  # not overwritten


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("stuck, stopped, resume_at", [
    ("", "in epoch 2 after batch 0/", (1, 0)),  # the default loader_timeout: minutes
    ("val", "in epoch 1 after batch 10/10", (0, 10)),  # resumes with the validation of epoch 1
], ids=["training", "validation"])
def test_sigterm_while_a_loader_is_stuck_stops_the_run_within_seconds(tiny_data, tmp_path, stuck, stopped, resume_at):
    proc, marker, out = _start(tmp_path, tiny_data, env={**ENV, "STUCK": stuck} if stuck else ENV)
    _when_stuck(proc, marker)
    time.sleep(1)  # the main process is waiting for the batch
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    ended = time.monotonic() - sent
    assert proc.returncode == Preempted.exit_code, err[-3000:]
    assert f"stopped by SIGTERM {stopped}" in err and "Traceback" not in err, err[-3000:]
    assert ended < 15, f"the run ended {ended:.0f} s after SIGTERM"
    state = ckpt.load_state(out / ckpt.STATE)
    assert (state["resume_at"]["epoch"], state["resume_at"]["step"]) == resume_at
