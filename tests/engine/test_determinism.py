"""Same seed, same run: the load on the machine, the thread count a process starts with and the
number of loader processes change nothing in what a run writes."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from laps.data.cores import usable_cores
from laps.engine.config import load_config, save_config
from laps.engine.reporting import read_rows
from laps.engine.run_dir import METRICS, SUMMARY
from laps.engine.runtime import resolve_threads
from laps.engine.trainer import train
from tests.helpers import tiny_config

#: the fields of metrics.jsonl that measure time, not what was computed
WALL_CLOCK = ("train_clips_per_s", "data_wait_share", "wall_time_s")
#: a CPU-bound process that ends by itself if the test dies before killing it
BUSY = "import time\nend = time.monotonic() + 300\nwhile time.monotonic() < end: pass"


def run(data, out, start_threads: int, **overrides):
    """Train in this process as if it had started with ``start_threads`` threads (what
    OMP_NUM_THREADS or a CPU affinity gives) -> metrics rows without wall-clock fields, weights."""
    before = torch.get_num_threads()
    torch.set_num_threads(start_threads)
    try:
        train(tiny_config(data, out, **{"model.img_size": 64, "model.patch_size": 8, "data.scale_min": 64,
                                        "data.scale_max": 72, **overrides}))
    finally:
        torch.set_num_threads(before)
    rows = [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in read_rows(out / METRICS)]
    return rows, {name: load_file(out / name) for name in ("model.safetensors", "last.safetensors")}


@pytest.mark.slow
def test_a_seed_gives_the_same_run_beside_a_busy_process_with_other_threads_and_workers(tiny_data, tmp_path):
    alone_rows, alone_weights = run(tiny_data, tmp_path / "alone", 1)
    busy = subprocess.Popen([sys.executable, "-c", BUSY])
    try:
        beside_rows, beside_weights = run(tiny_data, tmp_path / "beside", 3, **{"data.num_workers": 2})
    finally:
        busy.kill()
        busy.wait()
    assert len(alone_rows) == 2 and beside_rows == alone_rows
    for name, weights in alone_weights.items():
        assert weights.keys() == beside_weights[name].keys()
        assert all(torch.equal(weights[key], beside_weights[name][key]) for key in weights), name
    assert load_config(tmp_path / "alone" / "config.yaml").runtime.threads == resolve_threads("auto")
    assert f'"cpu_threads": {resolve_threads("auto")}' in (tmp_path / "beside" / SUMMARY).read_text()


def test_auto_threads_are_the_cores_of_this_process_shared_by_the_node(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # not read: it differs from one shell to the next
    assert resolve_threads("auto") == usable_cores()
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * usable_cores()))
    assert resolve_threads("auto") == 1
    assert resolve_threads(3) == 3


def test_a_resumed_run_keeps_the_thread_count_it_started_with(tmp_path):
    saved = tmp_path / "config.yaml"
    save_config(load_config(None, {"runtime.threads": usable_cores() + 5}), saved)
    assert resolve_threads("auto", saved) == usable_cores() + 5
    assert resolve_threads(2, saved) == 2  # a count given for the resumed run wins
    assert resolve_threads("auto", tmp_path / "absent.yaml") == usable_cores()
