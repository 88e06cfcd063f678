"""Reporting: progress as plain log lines when stderr is not a terminal, and the best epoch by a
named metric."""

import logging

import pytest

from laps.engine.reporting import Best
from laps.infer import progress as progress_module
from laps.infer.progress import LogProgress, progress


class Clock:
    """time.perf_counter() that advances ``step`` seconds at each call."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_log_line_every_n_seconds_with_the_latest_values(monkeypatch, caplog):
    monkeypatch.setattr(progress_module.time, "perf_counter", Clock(10.0))  # 10 s a batch
    bar = LogProgress(range(10), "epoch 1/2", total=12, initial=2, every_s=30.0)
    with caplog.at_level(logging.INFO, logger="laps.infer.progress"):
        for batch in bar:
            bar.set_postfix(loss=f"{batch:.3f}")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["epoch 1/2: batch 5/12 (42%), loss=2.000", "epoch 1/2: batch 8/12 (67%), loss=5.000",
                     "epoch 1/2: batch 11/12 (92%), loss=8.000"]


def test_a_pipe_gets_log_lines_and_a_terminal_a_bar(monkeypatch):
    monkeypatch.setattr(progress_module, "interactive", lambda: False)
    assert isinstance(progress([], "e", 0, enabled=True), LogProgress)
    assert not isinstance(progress([], "e", 0, enabled=False), LogProgress)
    monkeypatch.setattr(progress_module, "interactive", lambda: True)
    assert not isinstance(progress([], "e", 0, enabled=True), LogProgress)


@pytest.mark.parametrize("metric, values, best", [
    ("val_top1", [0.2, 0.5, 0.4, 0.5], (0.5, 2)),  # higher is better; a tie keeps the earlier epoch
    ("train_loss", [2.0, float("nan"), 1.5, 1.7], (1.5, 3)),  # lower is better; NaN never wins
])
def test_the_best_epoch_by_its_metric(metric, values, best):
    tracker = Best(metric)
    improved = [tracker.update({metric: value}, epoch) for epoch, value in enumerate(values, 1)]
    assert (tracker.value, tracker.epoch) == best
    assert improved == [True, metric == "val_top1", metric == "train_loss", False]


def test_an_epoch_without_the_metric_changes_nothing():
    tracker = Best("val_top1")
    assert not tracker.update({"train_loss": 1.0}, 1) and (tracker.value, tracker.epoch) == (None, None)


@pytest.mark.slow
def test_a_run_with_stderr_in_a_file_writes_lines_not_a_bar(tiny_data, tmp_path, capsys, caplog):
    from laps.engine.trainer import Trainer
    from tests.helpers import tiny_config

    config = tiny_config(tiny_data, tmp_path, **{"runtime.progress": True, "runtime.log_every_s": 0})
    with caplog.at_level(logging.INFO, logger="laps"):
        Trainer(config).fit()
    assert "\r" not in capsys.readouterr().err
    lines = [r.getMessage() for r in caplog.records if r.name in ("laps.engine.reporting", "laps.infer.progress")]
    progress_lines = [line for line in lines if ": batch " in line]
    assert [line.split(" (")[0] for line in progress_lines] == [f"epoch {e}/2: batch {b}/5" for e in (1, 2) for b in range(1, 5)]
    assert [line.split(":")[0] for line in lines if line not in progress_lines] == ["epoch 1/2", "epoch 2/2"]
