"""Plots are PNG files written without touching the caller's matplotlib state."""

import matplotlib
import numpy as np

from laps.analysis.plots import plot_confusion, plot_training_curves


def test_plots_leave_the_backend_and_pyplot_alone(tmp_path):
    import matplotlib.pyplot as plt

    original = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend the user chose, other than the Agg these plots render with
    try:
        figures = plt.get_fignums()
        rows = [{"epoch": e, "train_loss": 2.0 / e, "train_top1": 0.2 * e, "val_loss": 2.1 / e, "val_top1": 0.2 * e}
                for e in (1, 2, 3)]
        plot_training_curves({"laps": rows}, tmp_path / "curves.png")
        plot_confusion(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "confusion.png")
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == figures
    finally:
        matplotlib.use(original)
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
