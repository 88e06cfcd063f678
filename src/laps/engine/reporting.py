"""What a training run reports: an epoch's running sums, rates and progress bar
(:class:`EpochMeter`; off a terminal a log line every ``runtime.log_every_s`` seconds, see
:func:`laps.infer.progress.progress`), one metrics row per epoch (metrics.jsonl, TensorBoard, a log
line), and the summary at its end (summary.json, training_curves.png).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from laps.analysis.flops import count_flops
from laps.analysis.plots import plot_training_curves
from laps.atomic import atomic_path, write_text_atomic
from laps.data.cores import usable_cores
from laps.engine.builders import build_model
from laps.engine.config import Config
from laps.engine.run_dir import CURVES, METRICS, SUMMARY
from laps.errors import CheckpointError
from laps.infer.distributed import all_reduce_sum
from laps.infer.progress import progress

logger = logging.getLogger(__name__)

TENSORBOARD = "tensorboard"

#: the per-epoch sums of the training metrics that are added over processes
SUM_KEYS = ("loss", "correct", "count")

#: share of an epoch's time spent waiting for the next batch above which training is input-bound
INPUT_BOUND_SHARE = 0.2
#: steps an epoch runs before its waiting share is judged (the first batches include worker start-up)
INPUT_BOUND_MIN_STEPS = 20
#: seconds of waiting below which no remedy is worth it (a short epoch of a demo or a smoke test)
INPUT_BOUND_MIN_WAIT_S = 2.0


def new_sums() -> dict[str, float]:
    """An epoch's metric sums before its first batch (``skipped``: optimizer steps skipped)."""
    return {**dict.fromkeys(SUM_KEYS, 0.0), "skipped": 0}


class EpochMeter:
    """One epoch of training as it goes: iterating it iterates ``batches`` (``total`` of them, from
    batch ``start`` on) behind a progress bar (:func:`~laps.infer.progress.progress`), timing the
    waits for each batch; it keeps
    this process's :attr:`sums` (loss, correct and count of the batches with a finite loss, skipped
    steps), the sums of all processes ``carried`` over a resume in the middle of the epoch, and the
    clips all ``world`` processes have seen."""

    def __init__(self, batches: Iterable, total: int, desc: str, start: int, world: int, enabled: bool,
                 every_s: float, carried: dict[str, float] | None = None) -> None:
        self.bar = progress(batches, desc, total, initial=start, enabled=enabled, every_s=every_s)
        self.sums, self.carried = new_sums(), dict(carried or new_sums())
        self.world, self.clips, self.waited, self.began = world, 0, 0.0, time.perf_counter()

    def __iter__(self) -> Iterator:
        asked = time.perf_counter()
        for item in self.bar:
            self.waited += time.perf_counter() - asked
            yield item
            asked = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.began

    def add(self, loss: float, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Count a batch: its mean ``loss`` (left out of the sums when not finite), ``logits (B, K)``
        and ``labels (B,)``."""
        if math.isfinite(loss):
            self.sums["loss"] += loss * labels.shape[0]
            self.sums["correct"] += float((logits.argmax(-1) == labels).sum())
            self.sums["count"] += labels.shape[0]
        self.clips += labels.shape[0] * self.world

    def show(self, lr: float) -> None:
        """The running loss, accuracy, clips per second and data-wait share on the bar (tqdm keeps its own rate)."""
        elapsed, seen = self.elapsed, max(self.sums["count"], 1)  # 0 while every loss so far was non-finite
        self.bar.set_postfix(loss=f"{self.sums['loss'] / seen:.3f}", acc=f"{self.sums['correct'] / seen:.3f}",
                             clips_s=f"{self.clips / elapsed:.1f}", data=f"{self.waited / elapsed:.0%}",
                             lr=f"{lr:.2e}", refresh=False)

    def totals(self) -> dict[str, float]:
        """The epoch's sums over all processes (a collective), plus those carried over a resume, which
        every process holds. ``skipped`` is the same on every process (a non-finite gradient is
        non-finite everywhere after the all-reduce), so it is not added up."""
        summed = dict(zip(SUM_KEYS, all_reduce_sum([self.sums[k] for k in SUM_KEYS])))
        return {**{k: summed[k] + self.carried[k] for k in SUM_KEYS},
                "skipped": self.sums["skipped"] + self.carried["skipped"]}

    def rates(self) -> dict[str, float]:
        """``train_clips_per_s`` and ``data_wait_share`` of the epoch so far."""
        elapsed = self.elapsed
        return {"train_clips_per_s": self.clips / elapsed, "data_wait_share": self.waited / elapsed}


@dataclass
class Best:
    """The best epoch so far by ``metric``: ``val_top1`` (higher is better) when there is a
    validation set, else ``train_loss`` (lower is better); ``value`` and ``epoch`` (1-based) are
    None before an epoch that reports the metric."""

    metric: str
    value: float | None = None
    epoch: int | None = None

    def update(self, row: dict[str, float], epoch: int) -> bool:
        """Take the ``row`` of ``epoch`` if its metric is better -> whether it was."""
        value = row.get(self.metric)
        if value is None or math.isnan(value):
            return False
        if self.value is not None and not (value > self.value if self.metric == "val_top1" else value < self.value):
            return False
        self.value, self.epoch = value, epoch
        return True


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of metrics.jsonl; a torn last line (a process killed while appending it, before the
    epoch's checkpoint was committed) is dropped, a damaged line before it is an error."""
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines):
                raise CheckpointError(f"{path} line {number} is not JSON; the metrics log is damaged") from None
    return rows


class Reporter:
    """The per-epoch and end-of-run reports of a run directory ``out`` (rank 0 only: on other
    ranks ``enabled=False`` and every method does nothing)."""

    def __init__(self, out: Path, epochs: int, enabled: bool) -> None:
        self.out, self.epochs, self.enabled = out, epochs, enabled
        self.writer = None  # TensorBoard's SummaryWriter while the run is open

    def open(self, start_epoch: int) -> None:
        """Start metrics.jsonl afresh, or keep its rows up to ``start_epoch`` (a resumed run redoes the
        epochs after), and open TensorBoard's log."""
        if not self.enabled:
            return
        rows = [r for r in read_rows(self.out / METRICS) if r["epoch"] <= start_epoch] if start_epoch else []
        (self.out / METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is a dependency, but stay usable without it
            return
        self.writer = SummaryWriter(str(self.out / TENSORBOARD))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def epoch_row(self, row: dict[str, Any]) -> None:
        """Append an epoch's row to metrics.jsonl and TensorBoard, and log it in one line."""
        if not self.enabled:
            return
        with open(self.out / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.writer.add_scalar(key, value, row["epoch"])
        shown = ", ".join(f"{key} {value:.4g}" for key, value in row.items() if key not in ("epoch", "lr"))
        logger.info("epoch %d/%d: %s", row["epoch"], self.epochs, shown)

    def rows(self) -> list[dict[str, Any]]:
        return read_rows(self.out / METRICS)

    def summary(self, summary: dict[str, Any], rows: list[dict[str, Any]], label: str) -> None:
        """Write summary.json and the training curves of ``rows`` (labelled ``label``)."""
        write_text_atomic(self.out / SUMMARY, json.dumps(summary, indent=2))
        if rows:
            with atomic_path(self.out / CURVES) as tmp:
                plot_training_curves({label: rows}, tmp)


def gflops_per_view(path: Path, config: Config, num_classes: int) -> float:
    """GFLOPs of one view: traced once per run directory, on a CPU model of the same architecture
    (FLOPs do not depend on the weights), and cached in ``path`` (flops.json)."""
    if path.is_file():
        return json.loads(path.read_text())["gflops_per_view"]
    m = config.model
    model = build_model(config, num_classes, pretrained=False)
    gflops = count_flops(model, torch.zeros(1, m.num_frames, model.in_chans, m.img_size, m.img_size)) / 1e9
    write_text_atomic(path, json.dumps({"gflops_per_view": gflops}) + "\n")
    return gflops


class InputBoundCheck:
    """Says once per run, with the remedies, when training spends too long waiting for data: more
    than :data:`INPUT_BOUND_SHARE` of the epoch so far, and at least :data:`INPUT_BOUND_MIN_WAIT_S`
    seconds (a sub-second epoch of a smoke test gets no advice). Silent where ``enabled`` is false
    (processes other than rank 0)."""

    def __init__(self, enabled: bool = True) -> None:
        self.warned = not enabled

    def check(self, epoch: int, waited: float, elapsed: float, num_workers: int) -> None:
        """``waited`` of the epoch's ``elapsed`` seconds so far went to waiting for the next batch."""
        share = waited / elapsed
        if self.warned or share <= INPUT_BOUND_SHARE or waited < INPUT_BOUND_MIN_WAIT_S:
            return
        self.warned = True
        logger.warning(
            "training is input-bound: %.0f%% of epoch %d so far went to waiting for the next batch. Remedies: "
            "more loader processes (data.num_workers=%d now, %s CPU cores here), videos re-encoded with a short "
            "key-frame interval and a smaller short side, or a faster disk for data.root",
            100 * share, epoch + 1, num_workers, usable_cores(),
        )
