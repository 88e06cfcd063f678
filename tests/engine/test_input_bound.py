"""Training that waits for its data says so: the waiting share per epoch, and one warning."""

import json
import logging
import time

import pytest
from torch import nn

from laps.data.dataset import VideoDataset
from laps.engine.reporting import INPUT_BOUND_SHARE, InputBoundCheck
from laps.engine.trainer import Trainer
from tests.helpers import tiny_config


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _warnings(caplog):
    return [r for r in caplog.records if r.name == "laps.engine.reporting" and "input-bound" in r.getMessage()]


@pytest.mark.parametrize("waited, elapsed, warned", [(0.4, 0.6, False), (3.0, 4.0, True), (2.5, 20.0, False)])
def test_only_a_wait_worth_a_remedy_is_reported(caplog, waited, elapsed, warned):
    """A sub-second epoch that waited most of its time (laps demo --quick) gets no advice; a long
    wait that is most of the epoch does; a long wait in a longer epoch does not."""
    check = InputBoundCheck()
    with caplog.at_level(logging.WARNING, logger="laps.engine.reporting"):
        check.check(0, waited, elapsed, num_workers=0)
    assert bool(_warnings(caplog)) == warned == check.warned


@pytest.mark.slow  # a training run against a deliberately slow reader
def test_slow_data_is_reported_once_with_remedies(tiny_data, tmp_path, caplog, monkeypatch):
    read = VideoDataset.__getitem__

    def slow_read(self, index):
        time.sleep(0.15)
        return read(self, index)

    monkeypatch.setattr(VideoDataset, "__getitem__", slow_read)
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="laps.engine.reporting"):
        Trainer(tiny_config(tiny_data, run, **{"data.val_list": None})).fit()
    shares = [row["data_wait_share"] for row in _rows(run)]
    assert len(shares) == 2 and all(share > 0.5 for share in shares), shares
    [warning] = _warnings(caplog)  # two input-bound epochs, one message
    assert "data.num_workers=0" in warning.getMessage() and "key-frame interval" in warning.getMessage()


@pytest.mark.slow  # a training run against a deliberately slow model
def test_slow_model_is_not_input_bound(tiny_data, tmp_path, caplog):
    class SlowModel(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, clips):
            time.sleep(0.6)  # far above the loading time even on a busy machine
            return self.model(clips)

    run = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_data, run, **{"data.val_list": None}))
    trainer.net = SlowModel(trainer.model)
    with caplog.at_level(logging.WARNING, logger="laps.engine.reporting"):
        trainer.fit()
    assert all(row["data_wait_share"] < INPUT_BOUND_SHARE for row in _rows(run))
    assert not _warnings(caplog)
