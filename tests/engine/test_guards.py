"""The guards of a run, asked once after each optimizer step."""

from pathlib import Path

import pytest
import torch

from laps.engine.config import load_config
from laps.engine.guards import Guards
from laps.errors import TooManyBrokenFiles, TrainingDiverged


class Split:
    """The part of a VideoDataset the guards read."""

    def __init__(self, broken: int, size: int = 20) -> None:
        self.broken, self.size = broken, size
        self.records = [type("Record", (), {"path": f"v{i}.mp4"})() for i in range(size)]

    def __len__(self) -> int:
        return self.size

    def broken_flags(self) -> torch.Tensor:
        return torch.arange(self.size) < self.broken


def _guards(tmp_path: Path, **overrides) -> Guards:
    return Guards(load_config(None, {"optim.max_bad_steps": 3, **overrides}), tmp_path, distributed=False)


def test_a_streak_of_skipped_steps_stops_the_run_and_a_good_step_ends_the_streak(tmp_path):
    guards = _guards(tmp_path)
    for stepped in (False, False, True, False, False):
        assert guards.after_step(0, 4, stepped, Split(0), last=False) is False
    with pytest.raises(TrainingDiverged, match=r"^3 optimizer steps in a row .* no checkpoint was written yet"):
        guards.after_step(0, 5, False, Split(0), last=True)  # the streak is checked at an epoch's end too


def test_max_bad_steps_0_never_stops(tmp_path):
    guards = _guards(tmp_path, **{"optim.max_bad_steps": 0})
    assert not any(guards.after_step(0, step, False, Split(0), last=False) for step in range(50))


def test_a_stop_signal_is_answered_at_the_next_step_but_not_at_the_last_of_an_epoch(tmp_path):
    guards = _guards(tmp_path)
    guards.stop.received = 15
    assert guards.after_step(0, 8, True, Split(0), last=True) is False  # the epoch's end checkpoints first
    assert guards.after_step(0, 3, True, Split(0), last=False) is True


def test_too_many_broken_videos_stop_with_the_list(tmp_path):
    guards = _guards(tmp_path, **{"data.max_broken_share": 0.1})
    assert guards.after_step(0, 1, True, Split(2), last=False) is False  # 2 of 20: at the share, not past it
    with pytest.raises(TooManyBrokenFiles, match=r"^3 of 20 videos of the train split \(15.0%\)"):
        guards.after_step(0, 2, True, Split(3), last=False)
    assert (tmp_path / "broken_files.txt").read_text() == "v0.mp4\nv1.mp4\nv2.mp4\n"


def test_a_model_with_non_finite_weights_is_refused(tmp_path):
    model = torch.nn.Linear(2, 2)
    _guards(tmp_path).check_finite(model.state_dict())
    with torch.no_grad():
        model.bias[1] = float("inf")
    with pytest.raises(TrainingDiverged, match="the model's bias holds NaN or Inf; it was not saved"):
        _guards(tmp_path).check_finite(model.state_dict())
