"""The process-state rule: library code changes no process-wide state that it doesn't own.

Importing laps, building and running a model, drawing a plot and a whole ``Trainer.fit`` leave
the loggers, the warnings filters, torch's thread count and numerics settings, every RNG, the
signal handlers and matplotlib's backend as they were. Only the ``laps`` entry point may set them.
"""

import json
import logging
import random
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import laps
from tests.helpers import TINY_VIT, TINY_VIT_KW, tiny_config

SIGNALS = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])


def process_state(torch_rng: bool = True) -> dict:
    """What a library must leave alone, as comparable values. ``torch_rng=False`` leaves out torch's
    RNG, which building a module draws its initial weights from (consumed, not seeded)."""
    loggers = {"": logging.getLogger(), "laps": logging.getLogger("laps")} | {name: logger for name, logger in logging.Logger.manager.loggerDict.items()
                                           if isinstance(logger, logging.Logger)}
    state = {
        "loggers": {name: (logger.level, tuple(logger.handlers), logger.propagate, logger.disabled)
                    for name, logger in loggers.items()},
        "logging_disabled": logging.root.manager.disable,
        "warnings": tuple(warnings.filters),
        "torch_threads": torch.get_num_threads(),
        "torch_numerics": (torch.get_default_dtype(), torch.get_float32_matmul_precision(),
                           torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark),
        "numpy_rng": repr(np.random.get_state()),
        "python_rng": random.getstate(),
        "signals": [signal.getsignal(s) for s in SIGNALS],
    }
    if torch_rng:
        state["torch_rng"] = torch.get_rng_state().tolist()
    if "matplotlib" in sys.modules:
        import matplotlib

        state["matplotlib"] = (matplotlib.get_backend(), dict(matplotlib.rcParams))
    return state


def assert_unchanged(before: dict, after: dict) -> None:
    """Every value as it was; loggers created since (a module's own) are fine, changed ones are not."""
    changed = [f"logger {name!r}" for name, value in before["loggers"].items() if after["loggers"].get(name) != value]
    changed += sorted(key for key in before if key != "loggers" and before[key] != after.get(key))
    assert not changed, changed


def test_building_running_and_plotting_leave_the_process_as_it_was(tmp_path):
    from laps.analysis.plots import plot_training_curves

    before = process_state(torch_rng=False)
    model = laps.create_model(TINY_VIT, temporal="laps", num_frames=4, num_classes=3, depth=2, **TINY_VIT_KW)
    model(torch.randn(2, 4, 3, 32, 32)).sum().backward()
    model.set_num_frames(2)
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.5 / e, "train_top1": 0.1 * e, "val_top1": 0.1 * e}
            for e in (1, 2)]
    plot_training_curves({"run": rows}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert_unchanged(before, process_state(torch_rng=False))


@pytest.mark.slow
def test_a_whole_training_leaves_the_process_as_it_was(tiny_data, tmp_path):
    """Trainer.fit seeds, sets threads and installs signal handlers only while it runs."""
    from laps.engine.trainer import train

    torch.set_num_threads(2)
    before = process_state()
    train(tiny_config(tiny_data, tmp_path / "run", **{"optim.epochs": 1, "runtime.threads": 1, "runtime.seed": 7}))
    assert_unchanged(before, process_state())


@pytest.mark.slow
def test_importing_laps_in_a_fresh_interpreter_changes_nothing():
    """The import itself (run in a subprocess: this one has imported laps already)."""
    script = f"""
import json, logging, random, signal, sys, warnings
import numpy as np, sympy, torch  # sympy adds its own warnings filter when imported (torch imports it lazily)
def state():
    root = logging.getLogger()
    return repr((root.level, root.handlers, warnings.filters, torch.get_num_threads(), random.getstate(),
                 np.random.get_state(), signal.getsignal(signal.SIGTERM), "matplotlib" in sys.modules))
before = state()
import laps, laps.cli, laps.engine.trainer
model = laps.create_model("{TINY_VIT}", num_classes=3, temporal="laps", num_frames=4, img_size=32, patch_size=8, depth=1)
model(torch.zeros(1, 4, 3, 32, 32))
print(json.dumps([before, state()]))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, after = json.loads(result.stdout.strip().splitlines()[-1])
    assert before == after
