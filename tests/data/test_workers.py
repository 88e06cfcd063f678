"""Loader workers leave the stop signals of a whole process group to the main process."""

import io
import subprocess
import time

from torch.utils.data import DataLoader

from laps.data.workers import GROUP_SIGNALS, LoaderWorkers, iterate


def test_a_worker_outlives_stop_signals_from_another_process():
    loader = DataLoader(range(6), batch_size=1, num_workers=1, worker_init_fn=LoaderWorkers(1))
    iterator = iterate(loader)
    assert int(next(iterator)) == 0
    pid = int(loader.worker_init_fn.pids[0])
    for signum in GROUP_SIGNALS:  # as a scheduler's signal to the job: not from the worker's parent
        subprocess.run(["kill", f"-{signum.name.removeprefix('SIG')}", str(pid)], check=True)
    time.sleep(0.5)
    assert [int(batch) for batch in iterator] == [1, 2, 3, 4, 5]  # torch raises when a worker has died


def test_workers_start_where_stderr_is_no_file(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a notebook's stderr, or pytest's capture
    loader = DataLoader(range(3), batch_size=1, num_workers=1, worker_init_fn=LoaderWorkers(1))
    assert [int(batch) for batch in iterate(loader)] == [0, 1, 2]
