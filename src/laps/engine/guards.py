"""The guards of a training run, in one object that the loop asks at one point, after each
optimizer step (:meth:`Guards.after_step`):

- a stop signal (SIGTERM / SIGUSR1, :mod:`laps.engine.preemption`): checkpoint and stop;
- the share of missing or unreadable videos of a split past ``data.max_broken_share``: stop with
  the list in broken_files.txt (:class:`~laps.errors.TooManyBrokenFiles`);
- ``optim.max_bad_steps`` optimizer steps in a row with a NaN or Inf loss or gradient: stop
  (:class:`~laps.errors.TrainingDiverged`).

Before the first step :meth:`Guards.preflight` checks the labels and the files of a split, and
before any save :meth:`Guards.check_finite` refuses a model with non-finite weights. Under DDP or
FSDP every decision is agreed by all processes (a collective: every rank calls the same methods).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from laps.atomic import write_text_atomic
from laps.data.annotations import resolve_path
from laps.data.dataset import VideoDataset
from laps.engine import checkpoint as ckpt
from laps.engine.config import Config
from laps.engine.preemption import StopSignals
from laps.engine.run_dir import BROKEN
from laps.errors import DataError, TooManyBrokenFiles, TrainingDiverged
from laps.infer.distributed import all_reduce_sum, all_reduce_tensor, is_main_process

logger = logging.getLogger(__name__)


class Guards:
    """Stop signals, broken files and bad steps of the run in ``out``; ``with guards:`` catches
    the stop signals for the length of the block."""

    def __init__(self, config: Config, out: Path, distributed: bool) -> None:
        self.config, self.out, self.distributed = config, out, distributed
        self.stop = StopSignals()
        self.bad_streak = 0  # optimizer steps in a row skipped for a non-finite loss or gradient

    def __enter__(self) -> "Guards":
        self.stop.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.__exit__(*exc)

    def after_step(self, epoch: int, step: int, stepped: bool, train_set: VideoDataset, last: bool) -> bool:
        """After the optimizer step that ended at batch ``step``: raise for a streak of skipped steps
        or for too many broken training videos; return whether a stop signal came (checkpoint the
        exact step and stop). At the ``last`` batch of an epoch only the streak is checked: the
        epoch's end checks the rest after its checkpoint."""
        self._count(epoch, step, stepped)
        if last:
            return False
        stop, broken = self.agreed([self.stop.received is not None, self.too_many_broken(train_set)])
        self.check_broken("train", train_set, broken > 0)
        return stop > 0

    def _count(self, epoch: int, step: int, stepped: bool) -> None:
        o = self.config.optim
        self.bad_streak = 0 if stepped else self.bad_streak + 1
        if self.bad_streak == 1:
            logger.warning("epoch %d, batch %d: the loss or a gradient is NaN or Inf; step skipped", epoch + 1, step + 1)
        if o.max_bad_steps and self.bad_streak >= o.max_bad_steps:
            raise TrainingDiverged(
                f"{self.bad_streak} optimizer steps in a row had a NaN or Inf loss or gradient (epoch {epoch + 1}, "
                f"batch {step + 1}); stopped. Likely causes: a learning rate too high (optim.lr={o.lr:g}), "
                "fp16 without loss scaling, or broken input (NaN / Inf in the clips, wrong labels). "
                f"{self.last_good()}: lower optim.lr, set optim.clip_grad or runtime.amp=bf16, then --resume"
            )

    def agreed(self, flags: list[float]) -> list[float]:
        """``flags`` summed over processes: what every process decides on (a collective under DDP)."""
        return all_reduce_sum([float(f) for f in flags]) if self.distributed else [float(f) for f in flags]

    def stop_agreed(self) -> bool:
        """Whether any process received a stop signal (a collective under DDP: call it on every rank)."""
        return self.agreed([self.stop.received is not None])[0] > 0

    def preflight(self, split: str, dataset: VideoDataset, num_classes: int) -> None:
        """Before the first step: labels outside the class map are an error; missing videos are
        reported, counted as broken (skipped without a decode attempt) and, past
        ``data.max_broken_share``, stop the run."""
        bad = [r for r in dataset.records if not 0 <= r.label < num_classes]
        if bad:
            examples = ", ".join(f"{r.path} (label {r.label})" for r in bad[:3])
            raise DataError(f"{split} list: {len(bad)} videos have labels outside 0..{num_classes - 1} "
                            f"({num_classes} classes), e.g. {examples}; fix the list or data.classes")
        missing = [i for i, r in enumerate(dataset.records) if not os.path.exists(resolve_path(dataset.root, r.path))]
        for index in missing:
            dataset.mark_broken(index)
        if missing:
            logger.warning("%s list: %d of %d videos do not exist under %s and will be skipped, e.g. %s",
                           split, len(missing), len(dataset), dataset.root or ".",
                           ", ".join(dataset.records[i].path for i in missing[:3]))
            self.check_broken(split, dataset, exceeded=self.too_many_broken(dataset))

    def too_many_broken(self, dataset: VideoDataset) -> bool:
        return dataset.broken > self.config.data.max_broken_share * len(dataset)

    def check_broken(self, split: str, dataset: VideoDataset, exceeded: bool) -> None:
        """When any process found too many broken videos in ``split``: all processes join the lists,
        rank 0 writes them to broken_files.txt, and every process raises :class:`TooManyBrokenFiles`."""
        if not exceeded:
            return
        flags = all_reduce_tensor(dataset.broken_flags().to(torch.int32)) > 0
        paths = [dataset.records[i].path for i in flags.nonzero().flatten().tolist()]
        report = self.out / BROKEN
        if is_main_process():
            self.out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(report, "".join(f"{path}\n" for path in paths))
        share = self.config.data.max_broken_share
        raise TooManyBrokenFiles(
            f"{len(paths)} of {len(dataset)} videos of the {split} split ({len(paths) / len(dataset):.1%}) are missing "
            f"or unreadable, more than data.max_broken_share={share:g}; the list is in {report} "
            f"(e.g. {', '.join(paths[:3])}). Repair or drop them ('laps data check LIST --root DIR' gives "
            "the reasons), or raise data.max_broken_share"
        )

    def check_finite(self, *states: Mapping[str, torch.Tensor]) -> None:
        """Refuse to save a model whose state (``state_dict()``: weights and buffers) holds NaN or Inf."""
        for state in states:
            for name, tensor in state.items():
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise TrainingDiverged(
                        f"the model's {name} holds NaN or Inf; it was not saved. {self.last_good()}; lower "
                        "optim.lr or set optim.clip_grad, then --resume"
                    )

    def last_good(self) -> str:
        path = self.out / ckpt.STATE
        return f"the last good checkpoint is {path}" if path.is_file() else "no checkpoint was written yet"
