"""Plots written as PNG files, through matplotlib's object API: a ``Figure`` of its own that saves
itself, so the caller's pyplot state and backend (a notebook's, say) are left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def new_figure(figsize: tuple[float, float]):
    """A matplotlib ``Figure`` outside pyplot (no backend switch, nothing left open)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def plot_training_curves(runs: dict[str, Sequence[dict]], path: str | Path) -> None:
    """Loss and top-1 per epoch for one or more runs (``{name: metrics.jsonl rows}``): one colour per
    run, train dashed, validation solid."""
    fig = new_figure((10, 4))
    loss_ax, acc_ax = fig.subplots(1, 2)
    for index, (name, rows) in enumerate(runs.items()):
        colour = f"C{index % 10}"
        epochs = [r["epoch"] for r in rows]
        loss_ax.plot(epochs, [r["train_loss"] for r in rows], "--", color=colour, label=f"{name} train")
        acc_ax.plot(epochs, [100 * r["train_top1"] for r in rows], "--", color=colour, label=f"{name} train")
        if any("val_top1" in r for r in rows):
            val = [r for r in rows if "val_top1" in r]
            loss_ax.plot([r["epoch"] for r in val], [r["val_loss"] for r in val], color=colour, label=f"{name} val")
            acc_ax.plot([r["epoch"] for r in val], [100 * r["val_top1"] for r in val], color=colour,
                        label=f"{name} val")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="top-1 (%)", title="accuracy", ylim=(0, 100))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_confusion(confusion: np.ndarray, classes: Sequence[str], path: str | Path) -> None:
    """Confusion matrix (rows = true class, columns = predicted), counts annotated."""
    size = max(4.0, 0.5 * len(classes) + 2)
    fig = new_figure((size, size))
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    if len(classes) <= 30:
        for (i, j), count in np.ndenumerate(confusion):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > confusion.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
