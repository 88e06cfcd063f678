"""Preemption: SIGTERM / SIGUSR1 make `laps train` checkpoint the exact step and exit 75; --resume
continues mid-epoch, and the run ends with the metrics and weights of an uninterrupted one."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch
from safetensors.torch import load_file

from laps.engine import checkpoint as ckpt
from laps.engine.preemption import StopSignals
from laps.errors import Preempted

FLAGS = ["--model", "vit_tiny_patch16_224", "--img-size", "32", "--num-frames", "4", "--sampling-rate", "2",
         "--batch-size", "2", "--lr", "0.001", "--seed", "0", "--train-list", "train.txt", "--val-list", "val.txt",
         "--epochs", "3", "model.patch_size=16", "model.depth=1", "data.scale_min=32", "data.scale_max=36",
         "data.num_workers=0", "optim.warmup_epochs=1", "model.drop_path=0.1", "optim.mixup=0.2",
         "runtime.log_every_s=0"]  # stderr is a pipe: a progress line after every batch
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
STOPPED = re.compile(r"stopped by (SIG\w+) (?:in epoch (\d+) after batch (\d+)/(\d+)|after epoch (\d+))")
PROGRESS = re.compile(r"epoch (\d+)/3: batch (\d+)/(\d+)")


def _cmd(data, out, *extra):
    return [sys.executable, "-m", "laps", "train", "--data-root", str(data), "--output", str(out), *FLAGS, *extra]


def _rows(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "train_clips_per_s", "data_wait_share")} for r in rows]


def _run_and_signal(cmd, target_epoch, target_batch, signum, group=False, **popen):
    """Run ``cmd`` (``popen``: more arguments of Popen); send ``signum`` (to its whole process group
    with ``group``) once its progress lines show ``target_batch`` of ``target_epoch`` -> (return code, stderr)."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=group,
                            **popen)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")))
    reader.start()
    sent = False
    while proc.poll() is None:
        for epoch, batch, _ in PROGRESS.findall(b"".join(chunks).decode(errors="replace")):
            if not sent and (int(epoch), int(batch)) >= (target_epoch, target_batch):
                os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
                sent = time.monotonic()
        time.sleep(0.01)
    reader.join()
    assert not sent or time.monotonic() - sent < 20, f"the run ended {time.monotonic() - sent:.0f} s after the signal"
    return proc.returncode, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_signals_checkpoint_mid_epoch_and_resume_equals_uninterrupted(tiny_data, tmp_path):
    full = tmp_path / "full"
    subprocess.run(_cmd(tiny_data, full, "runtime.progress=false"), check=True, env=ENV, capture_output=True)

    run = tmp_path / "run"
    stops = []
    # (epoch, batch seen in the progress lines, signal); each run after the first resumes the previous one
    for number, (epoch, batch, signum) in enumerate([(1, 3, signal.SIGTERM), (2, 5, signal.SIGUSR1)]):
        code, err = _run_and_signal(_cmd(tiny_data, run, *(["--resume"] if number else [])), epoch, batch, signum)
        assert code in (0, Preempted.exit_code), err[-2000:]
        if code == 0:
            break
        found = STOPPED.search(err)
        assert found, err[-2000:]
        assert found.group(1) == signal.Signals(signum).name
        state = ckpt.load_state(run / "state.pt")
        if found.group(5):  # between two epochs: the epoch's own checkpoint
            assert "resume_at" not in state and state["epoch"] + 1 == int(found.group(5))
            continue
        stops.append((int(found.group(2)), int(found.group(3)), int(found.group(4))))
        assert state["resume_at"] == {**state["resume_at"], "epoch": stops[-1][0] - 1, "step": stops[-1][1]}
    else:
        code, err = _run_and_signal(_cmd(tiny_data, run, "--resume"), 99, 0, signal.SIGTERM)  # never signalled
        assert code == 0, err[-2000:]
    assert any(0 < batch < total for _, batch, total in stops), f"no stop landed mid-epoch: {stops}"
    assert _rows(run) == _rows(full)
    for name in ("model.safetensors", "last.safetensors"):
        a, b = load_file(run / name), load_file(full / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("epoch, batch, signum", [(1, 3, signal.SIGTERM), (2, 5, signal.SIGTERM), (1, 6, signal.SIGUSR1)])
def test_a_signal_to_the_whole_process_group_stops_the_run_with_a_resumable_checkpoint(tiny_data, tmp_path, epoch,
                                                                                       batch, signum):
    """A scheduler signals every process of a job, the loader workers too: they outlive the signal
    until the main process has written its checkpoint, and the run resumes from it."""
    run = tmp_path / "run"
    code, err = _run_and_signal(_cmd(tiny_data, run, "data.num_workers=2"), epoch, batch, signum, group=True)
    assert code == Preempted.exit_code and "Traceback" not in err and "killed by signal" not in err, err[-3000:]
    found = STOPPED.search(err)
    assert found and found.group(1) == signal.Signals(signum).name, err[-3000:]
    state = ckpt.load_state(run / "state.pt")
    assert state["resume_at"]["epoch"] == epoch - 1 and state["resume_at"]["step"] >= batch, err[-3000:]
    resumed = subprocess.run(_cmd(tiny_data, run, "data.num_workers=2", "runtime.progress=false", "--resume"),
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [row["epoch"] for row in _rows(run)] == [1, 2, 3]


def test_stop_signals_are_caught_only_inside_the_block():
    before = signal.getsignal(signal.SIGUSR1)
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert stop.received == signal.SIGUSR1 and stop.name == "SIGUSR1"
    assert signal.getsignal(signal.SIGUSR1) is before


def _rank_pids(launcher_pid):
    """{rank: pid} of the worker processes a torchrun launcher started."""
    found = {}
    children = subprocess.run(["pgrep", "-P", str(launcher_pid)], capture_output=True, text=True).stdout.split()
    for pid in children:
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(pid)
    return found


@pytest.mark.slow
def test_a_signal_to_one_ddp_process_stops_all_of_them_at_the_same_step(tiny_data, tmp_path):
    """Under DDP the processes agree on a stop (a signal reached only rank 1 here): rank 0 writes the
    checkpoint, nobody hangs, and the resumed run ends with the uninterrupted run's weights."""
    def ddp(out, *extra):
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
                "-m", "laps", "train", "--data-root", str(tiny_data), "--output", str(out), *FLAGS,
                "runtime.progress=false", *extra]

    full = tmp_path / "full"
    subprocess.run(ddp(full), check=True, env=ENV, capture_output=True, timeout=300)
    run = tmp_path / "run"
    launcher = subprocess.Popen(ddp(run), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
    deadline = time.time() + 120
    while not (run / "metrics.jsonl").is_file() and time.time() < deadline:  # training has begun
        time.sleep(0.01)
    time.sleep(0.3)
    ranks = _rank_pids(launcher.pid)
    assert set(ranks) == {0, 1}
    os.kill(ranks[1], signal.SIGUSR1)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0 and "stopped by SIGUSR1" in err, err[-3000:]
    assert len(_rows(run)) < 3
    resume = subprocess.run(ddp(run, "--resume"), env=ENV, capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr[-3000:]
    a, b = _rows(run), _rows(full)
    assert [r["epoch"] for r in a] == [1, 2, 3]
    for x, y in zip(a, b):  # the per-epoch sums were reduced at the stop: equal up to summation order
        assert x == {**y, "train_loss": pytest.approx(y["train_loss"], rel=1e-9)}
    w, v = load_file(run / "last.safetensors"), load_file(full / "last.safetensors")
    assert all(torch.equal(w[k], v[k]) for k in w)
