"""The training loop: AMP, accumulation, clipping, schedules, mixup, EMA, DDP, checkpoints, logs.

Determinism and resume: the model's initial weights come from ``seed``, an epoch's data order and
augmentations from ``(seed, epoch)``, and a step's dropout and mixup from ``(seed, epoch, step)``.
A checkpoint is written atomically after every epoch, so a run killed at any point and resumed with
``--resume`` ends with the same metrics as an uninterrupted one (the interrupted epoch is redone
from its start). SIGTERM / SIGUSR1 write a checkpoint of the exact step instead, and ``--resume``
continues from that step (:mod:`laps.engine.preemption`).

Faults are caught where they appear (docs/reliability.md): a step whose loss or gradient is not
finite is skipped and counted, and ``optim.max_bad_steps`` of them in a row stop the run
(:class:`~laps.errors.TrainingDiverged`); a model with non-finite weights is never saved; missing
videos and labels outside the class map are reported before the first step, and a split whose
unreadable videos pass ``data.max_broken_share`` stops the run with the list
(:class:`~laps.errors.TooManyBrokenFiles`); the output directory is locked and never clobbered
(:mod:`laps.engine.run_dir`).

The trainer seeds torch's RNGs and sets ``runtime.threads`` only inside
:func:`torch.random.fork_rng` and for the length of :meth:`Trainer.fit`: the caller's random state
and thread count are what they were afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from laps.atomic import atomic_path, write_text_atomic
from laps.analysis.flops import count_flops, count_params
from laps.analysis.plots import plot_training_curves
from laps.data import build_loader, set_epoch
from laps.data.annotations import resolve_path
from laps.data.dataset import VideoDataset, usable_cores
from laps.engine import checkpoint as ckpt
from laps.engine.builders import build_dataset, build_model, class_names, read_split, resolve_device
from laps.engine.config import Config, save_config
from laps.engine.distributed import all_reduce_sum, all_reduce_tensor, cleanup, init_distributed, is_main_process, rank, world_size
from laps.engine.evaluate import autocast, evaluate
from laps.engine.precise_bn import recompute_bn_stats
from laps.engine.preemption import StopSignals
from laps.engine.run_dir import BROKEN, CURVES, FLOPS, METRICS, SUMMARY, RunLock, claim_output
from laps.engine.runtime import seeded, threads
from laps.models.video import load_weights_into
from laps.errors import CheckpointError, ConfigError, DataError, Preempted, TooManyBrokenFiles, TrainingDiverged


logger = logging.getLogger(__name__)

#: share of an epoch's time spent waiting for the next batch above which training is input-bound
INPUT_BOUND_SHARE = 0.2
#: steps an epoch runs before its waiting share is judged (the first batches include worker start-up)
INPUT_BOUND_MIN_STEPS = 20
#: the per-epoch sums of the training metrics
SUM_KEYS = ("loss", "correct", "count")


def lr_lambda(steps_per_epoch: int, *, schedule: str, epochs: int, warmup_epochs: float = 0.0,
              milestones: Sequence[int] = (), gamma: float = 0.1) -> Callable[[int], float]:
    """Per-step LR multiplier: linear warm-up, then cosine / step (milestones in epochs) / constant."""
    warmup = warmup_epochs * steps_per_epoch
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
        if schedule == "step":
            return gamma ** sum(step >= m * steps_per_epoch for m in milestones)
        return 1.0

    return factor


def step_seed(seed: int, epoch: int, step: int, stream: int = 0) -> int:
    """Seed of one training step's randomness (stream 0: dropout and drop-path; 1: mixup / cutmix)."""
    return int(np.random.SeedSequence([seed, epoch, step, stream]).generate_state(1)[0])


def mix_batch(clips: torch.Tensor, labels: torch.Tensor, num_classes: int, generator: torch.Generator, *,
              mixup: float = 0.0, cutmix: float = 0.0, label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or CutMix (Beta alphas; chosen at random when both are on) on ``(B, T, C, H, W)``; the
    same box for every frame. Returns mixed clips and soft targets ``(B, K)`` with label smoothing."""
    smooth = label_smoothing
    targets = F.one_hot(labels, num_classes).float() * (1 - smooth) + smooth / num_classes
    if mixup <= 0 and cutmix <= 0:
        return clips, targets
    use_cutmix = cutmix > 0 and (mixup == 0 or torch.rand((), generator=generator) < 0.5)
    alpha = cutmix if use_cutmix else mixup
    lam = float(torch.distributions.Beta(alpha, alpha).sample()) if alpha else 1.0
    partner = clips.flip(0)
    if use_cutmix:
        height, width = clips.shape[-2:]
        cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
        cy = int(torch.randint(height, (), generator=generator))
        cx = int(torch.randint(width, (), generator=generator))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        clips = clips.clone()
        clips[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (height * width)
    else:
        clips = lam * clips + (1 - lam) * partner
    return clips, lam * targets + (1 - lam) * targets.flip(0)


class Trainer:
    """One training run, configured by a :class:`Config`; call :meth:`fit`."""

    def __init__(self, config: Config, resume: bool = False, overwrite: bool = False) -> None:
        self.config = config
        self.out = Path(config.runtime.output)
        self.device = resolve_device(config.runtime.device)
        if config.runtime.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("runtime.amp=fp16 needs CUDA; use runtime.amp=bf16 on CPU")
        self.distributed = init_distributed(self.device)
        if self.device.type == "cuda" and self.distributed:
            torch.cuda.set_device(rank() % torch.cuda.device_count())
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.resume, self.overwrite = resume, overwrite
        self.warned_input_bound = False
        self.stop = StopSignals()
        self.bad_streak = 0
        self.best, self.wall = {"top1": -math.inf, "epoch": -1}, 0.0
        self._build_data()
        self._build_model()

    def _build_data(self) -> None:
        c = self.config
        train_records, train_root = read_split(c, "train_list")
        self.classes = class_names(c, train_records)
        val_records, val_root = read_split(c, "val_list", self.classes) if c.data.val_list else (None, "")
        self.num_classes = len(self.classes)
        self.train_set = build_dataset(c, train_records, train_root, train=True)
        self.val_set = build_dataset(c, val_records, val_root, train=False, views=c.data.val_views) if val_records else None
        for split, dataset in (("train", self.train_set), ("val", self.val_set)):
            if dataset is not None:
                self._preflight(split, dataset)
        per_rank = c.optim.batch_size // world_size()
        if per_rank * world_size() != c.optim.batch_size:
            raise ConfigError(f"optim.batch_size={c.optim.batch_size} must be divisible by the {world_size()} processes")
        if len(self.train_set) < c.optim.batch_size:
            raise ConfigError(f"optim.batch_size={c.optim.batch_size} is larger than the {len(self.train_set)} training videos")
        self.train_loader = build_loader(self.train_set, per_rank, train=True, num_workers=c.data.num_workers,
                                         num_replicas=world_size(), rank=rank(), seed=c.runtime.seed)
        if self.val_set is not None:
            self.val_loader = build_loader(self.val_set, max(1, per_rank), train=False,
                                           num_workers=c.data.num_workers, num_replicas=world_size(), rank=rank())

    def _preflight(self, split: str, dataset: VideoDataset) -> None:
        """Before the first step: labels outside the class map are an error; missing videos are
        reported, counted as broken (skipped without a decode attempt) and, past
        ``data.max_broken_share``, stop the run."""
        bad = [r for r in dataset.records if not 0 <= r.label < self.num_classes]
        if bad:
            examples = ", ".join(f"{r.path} (label {r.label})" for r in bad[:3])
            raise DataError(f"{split} list: {len(bad)} videos have labels outside 0..{self.num_classes - 1} "
                            f"({self.num_classes} classes), e.g. {examples}; fix the list or data.classes")
        missing = [i for i, r in enumerate(dataset.records) if not os.path.exists(resolve_path(dataset.root, r.path))]
        for index in missing:
            dataset.mark_broken(index)
        if missing:
            logger.warning("%s list: %d of %d videos do not exist under %s and will be skipped, e.g. %s",
                           split, len(missing), len(dataset), dataset.root or ".",
                           ", ".join(dataset.records[i].path for i in missing[:3]))
            self._check_broken(split, dataset, exceeded=self._too_many_broken(dataset))

    def _too_many_broken(self, dataset: VideoDataset) -> bool:
        return dataset.broken > self.config.data.max_broken_share * len(dataset)

    def _check_broken(self, split: str, dataset: VideoDataset, exceeded: bool) -> None:
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

    def _build_model(self) -> None:
        c = self.config
        with seeded(c.runtime.seed, self.device):
            self.model = build_model(c, self.num_classes, pretrained=not self.resume).to(self.device)
        self.params = count_params(self.model)
        self.optimizer = create_optimizer_v2(
            self.model.backbone, opt="momentum" if c.optim.optimizer == "sgd" else "adamw", lr=c.optim.lr,
            weight_decay=c.optim.weight_decay, momentum=c.optim.momentum,
            layer_decay=c.optim.layer_decay if c.optim.layer_decay < 1 else None,
        )
        self.steps_per_epoch = max(1, len(self.train_loader) // c.optim.accum_steps)
        o = c.optim
        factor = lr_lambda(self.steps_per_epoch, schedule=o.schedule, epochs=o.epochs, warmup_epochs=o.warmup_epochs,
                           milestones=o.milestones, gamma=o.gamma)
        # layer decay: timm puts each group's scale in "lr_scale", for its own schedulers to apply
        scales = [group.get("lr_scale", 1.0) for group in self.optimizer.param_groups]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, [lambda step, scale=scale: scale * factor(step) for scale in scales])
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=c.runtime.amp == "fp16")
        self.ema = ModelEmaV3(self.model, decay=c.optim.ema_decay) if c.optim.ema_decay > 0 else None
        self.net = DistributedDataParallel(self.model) if self.distributed else self.model
        if c.runtime.compile:
            self.net = torch.compile(self.net)

    @property
    def eval_model(self) -> nn.Module:
        """The model that is evaluated and saved: the EMA model when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------------ state
    def _state(self, epoch: int, best: dict[str, Any], wall: float) -> dict[str, Any]:
        state = {
            "epoch": epoch, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "best": best, "wall_time_s": wall,
            "config": self.config.to_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
        return state

    def _restore(self) -> tuple[int, int, dict[str, float] | None]:
        """Load the newest good training state -> (epoch, step to start at, the epoch's metric sums
        so far when it stopped mid-epoch)."""
        state = ckpt.load_resume_state(self.out)
        load_weights_into(self.model, state["model"], self.out / ckpt.STATE)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            load_weights_into(self.ema.module, state["ema"], self.out / ckpt.STATE)
        self.best, self.wall = state["best"], state["wall_time_s"]
        at = state.get("resume_at")
        if at is not None:
            return at["epoch"], at["step"], at["sums"]
        return state["epoch"] + 1, 0, None

    def _save_state(self, state: dict[str, Any]) -> None:
        """Commit ``state`` as state.pt, keeping the one before as state.prev.pt (the caller has
        checked that the model is finite)."""
        ckpt.save_state(state, self.out / ckpt.STATE, self.out / ckpt.PREVIOUS_STATE)

    def _check_finite(self) -> None:
        """Refuse to save a model whose weights or buffers hold NaN or Inf."""
        for model in (self.model, self.eval_model):
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise TrainingDiverged(
                        f"the model's {name} holds NaN or Inf; it was not saved. {self._last_good()}; lower "
                        "optim.lr or set optim.clip_grad, then --resume"
                    )

    def _last_good(self) -> str:
        path = self.out / ckpt.STATE
        return f"the last good checkpoint is {path}" if path.is_file() else "no checkpoint was written yet"

    def _write_epoch(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        """Metrics row, weights, then the training state: the state is the commit point of an
        epoch, so a process killed anywhere in here redoes exactly this epoch on resume."""
        self._check_finite()
        eval_model = self.eval_model
        with open(self.out / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
        ckpt.save_weights(eval_model, self.out / ckpt.LAST, self.config, self.classes)
        if improved:
            ckpt.save_weights(eval_model, self.out / ckpt.BEST, self.config, self.classes)
        self._save_state(self._state(epoch, self.best, self.wall))

    def _preempt(self, epoch: int, step: int, sums: dict[str, float]) -> None:
        """Write a checkpoint that resumes at batch ``step`` of ``epoch`` (with the epoch's metric
        sums so far, over all processes), then raise :class:`Preempted`."""
        totals = dict(zip(SUM_KEYS, all_reduce_sum([sums[k] for k in SUM_KEYS])), skipped=sums["skipped"])
        path = self.out / ckpt.STATE
        if is_main_process():
            self._check_finite()
            state = self._state(epoch - 1, self.best, self.wall + time.perf_counter() - self.epoch_began)
            state["resume_at"] = {"epoch": epoch, "step": step, "sums": totals}
            self._save_state(state)
            logger.warning("checkpoint of epoch %d, batch %d/%d written to %s", epoch + 1, step,
                           len(self.train_loader), path)
        raise Preempted(f"stopped by {self.stop.name} in epoch {epoch + 1} after batch {step}/{len(self.train_loader)}; "
                        f"the checkpoint is {path}: run the same command with --resume to continue from there")

    def _agreed(self, flags: list[float]) -> list[float]:
        """``flags`` summed over processes: what every process decides on (a collective under DDP)."""
        return all_reduce_sum([float(f) for f in flags]) if self.distributed else [float(f) for f in flags]

    def _stop_agreed(self) -> bool:
        """Whether any process received a stop signal (a collective under DDP: call it on every rank)."""
        return self._agreed([self.stop.received is not None])[0] > 0

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict[str, Any]:
        """Train every remaining epoch -> summary.json's content (empty on ranks other than 0).

        Raises :class:`Preempted` after writing a checkpoint when SIGTERM or SIGUSR1 arrives,
        :class:`TrainingDiverged` and :class:`TooManyBrokenFiles` when the run cannot go on."""
        lock = RunLock(self.out) if is_main_process() else nullcontext()
        with seeded(self.config.runtime.seed, self.device), threads(self.config.runtime.threads), self.stop, lock:
            return self._fit()

    def _fit(self) -> dict[str, Any]:
        c = self.config
        if is_main_process():
            claim_output(self.out, self.resume, self.overwrite)
        start_epoch, start_step, carried = self._restore() if self.resume else (0, 0, None)
        if is_main_process():
            self._prepare_output(start_epoch)
            logger.info("training %s/%s in %s from epoch %d%s; SIGTERM or SIGUSR1 checkpoints and exits with code %d",
                        c.model.backbone, c.model.temporal, self.out, start_epoch + 1,
                        f" batch {start_step}" if start_step else "", Preempted.exit_code)
        writer = self._tensorboard()
        try:
            for epoch in range(start_epoch, c.optim.epochs):
                self.epoch_began = time.perf_counter()
                resumed = epoch == start_epoch
                row = {"epoch": epoch + 1, **self._train_epoch(epoch, start_step if resumed else 0,
                                                               carried if resumed else None)}
                if self.val_set is not None and ((epoch + 1) % c.runtime.eval_every == 0 or epoch + 1 == c.optim.epochs):
                    self._precise_bn()
                    result = evaluate(self.eval_model, self.val_loader, self.num_classes, c.runtime.amp,
                                      c.runtime.progress, desc=f"val {epoch + 1}", should_stop=self._stop_agreed)
                    if result is None:  # stopped: redo the evaluation on resume, not the training
                        self._preempt(epoch, len(self.train_loader), self.epoch_sums)
                    self._check_broken("val", self.val_set, self._agreed([self._too_many_broken(self.val_set)])[0] > 0)
                    row.update(val_loss=result["loss"], val_top1=result["top1"], val_top5=result["top5"],
                               val_mean_class_acc=result["mean_class_acc"])
                self.wall += time.perf_counter() - self.epoch_began
                row["wall_time_s"] = self.wall
                score = row.get("val_top1", -row["train_loss"])
                improved = score > self.best["top1"]
                if improved:
                    self.best = {"top1": score, "epoch": epoch + 1}
                if is_main_process():
                    self._write_epoch(epoch, row, improved)
                    if writer is not None:
                        for key, value in row.items():
                            if key != "epoch":
                                writer.add_scalar(key, value, epoch + 1)
                if epoch + 1 < c.optim.epochs and self._stop_agreed():
                    raise Preempted(f"stopped by {self.stop.name} after epoch {epoch + 1}; its checkpoint is "
                                    f"{self.out / ckpt.STATE}: run the same command with --resume to continue")
            return self._finish(self.best, self.wall) if is_main_process() else {}
        finally:
            if writer is not None:
                writer.close()

    def _prepare_output(self, start_epoch: int) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if start_epoch == 0:
            (self.out / METRICS).write_text("")
            (self.out / FLOPS).unlink(missing_ok=True)
        else:  # drop rows of epochs that will be redone
            rows = _read_rows(self.out / METRICS)
            (self.out / METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows if r["epoch"] <= start_epoch))
        save_config(self.config, self.out / ckpt.CONFIG)
        ckpt.write_model_config(self.out, self.model, self.config, self.classes)

    def _tensorboard(self):
        if not is_main_process():
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is a dependency, but stay usable without it
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    def _train_epoch(self, epoch: int, start: int = 0, carried: dict[str, float] | None = None) -> dict[str, float]:
        """Train one epoch from batch ``start`` (a resumed run), its metric sums starting at ``carried``."""
        c = self.config
        set_epoch(self.train_loader, epoch, start_batch=start)
        self.net.train()
        zeros = {**dict.fromkeys(SUM_KEYS, 0.0), "skipped": 0}
        sums = self.epoch_sums = dict(carried) if carried is not None and is_main_process() else zeros
        if carried is not None:
            sums["skipped"] = carried["skipped"]
        clips_seen, waited, began = 0, 0.0, time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{c.optim.epochs}", leave=False, initial=start,
                   total=len(self.train_loader), disable=not (c.runtime.progress and is_main_process()),
                   dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        step, asked = start - 1, time.perf_counter()
        for step, (clips, labels) in enumerate(bar, start):
            waited += time.perf_counter() - asked
            torch.manual_seed(step_seed(c.runtime.seed, epoch, step))  # dropout and drop-path
            mix_generator = torch.Generator().manual_seed(step_seed(c.runtime.seed, epoch, step, 1))
            clips = self.train_set.normalize(clips.to(self.device, non_blocking=True))  # uint8 until here
            labels = labels.to(self.device, non_blocking=True)
            mixed, targets = mix_batch(clips, labels, self.num_classes, mix_generator, mixup=c.optim.mixup,
                                       cutmix=c.optim.cutmix, label_smoothing=c.optim.label_smoothing)
            with autocast(self.device, c.runtime.amp):
                logits = self.net(mixed)
            loss = torch.sum(-targets * logits.float().log_softmax(-1), dim=-1).mean()
            # always backward, also for a non-finite loss: under DDP every process must join the
            # gradient all-reduce, and the non-finite gradient then skips the step on all of them
            self.scaler.scale(loss / c.optim.accum_steps).backward()
            loss_value = float(loss.detach())
            if math.isfinite(loss_value):
                sums["loss"] += loss_value * labels.shape[0]
                sums["correct"] += float((logits.argmax(-1) == labels).sum())
                sums["count"] += labels.shape[0]
            if (step + 1) % c.optim.accum_steps == 0:
                self._after_step(epoch, step, self._optimizer_step())
            clips_seen += labels.shape[0] * world_size()
            elapsed = time.perf_counter() - began  # float(loss) above waited for the device
            seen = max(sums["count"], 1)  # 0 while every batch so far had a non-finite loss
            bar.set_postfix(loss=f"{sums['loss'] / seen:.3f}", acc=f"{sums['correct'] / seen:.3f}",
                            clips_s=f"{clips_seen / elapsed:.1f}", data=f"{waited / elapsed:.0%}",
                            lr=f"{self._lr():.2e}", refresh=False)  # tqdm's own rate
            if step + 1 == INPUT_BOUND_MIN_STEPS:
                self._check_input_bound(epoch, waited / elapsed)
            asked = time.perf_counter()
        elapsed = time.perf_counter() - began
        if step + 1 < INPUT_BOUND_MIN_STEPS:
            self._check_input_bound(epoch, waited / elapsed)
        set_epoch(self.train_loader, epoch)  # precise BN reads the epoch from its first batch
        loss_sum, correct, count = all_reduce_sum([sums[k] for k in SUM_KEYS])
        return {
            "train_loss": loss_sum / max(count, 1) if count else math.nan, "train_top1": correct / max(count, 1),
            "lr": self._lr(), "train_clips_per_s": clips_seen / elapsed,
            "data_wait_share": waited / elapsed, "broken_files": self.train_set.broken,
            "skipped_steps": sums["skipped"],
        }

    def _after_step(self, epoch: int, step: int, stepped: bool) -> None:
        """After an optimizer step: count non-finite steps (and stop after too many in a row), stop
        for too many broken videos, and checkpoint and stop on a stop signal."""
        c = self.config
        if stepped:
            self.bad_streak = 0
        else:
            self.bad_streak += 1
            self.epoch_sums["skipped"] += 1
            if self.bad_streak == 1:
                logger.warning("epoch %d, batch %d: the loss or a gradient is NaN or Inf; step skipped", epoch + 1, step + 1)
            if c.optim.max_bad_steps and self.bad_streak >= c.optim.max_bad_steps:
                raise TrainingDiverged(
                    f"{self.bad_streak} optimizer steps in a row had a NaN or Inf loss or gradient (epoch {epoch + 1}, "
                    f"batch {step + 1}); stopped. Likely causes: a learning rate too high (optim.lr={c.optim.lr:g}), "
                    "fp16 without loss scaling, or broken input (NaN / Inf in the clips, wrong labels). "
                    f"{self._last_good()}: lower optim.lr, set optim.clip_grad or runtime.amp=bf16, then --resume"
                )
        if step + 1 == len(self.train_loader):  # the epoch's end checks for signals after its checkpoint
            return
        stop, broken = self._agreed([self.stop.received is not None, self._too_many_broken(self.train_set)])
        self._check_broken("train", self.train_set, broken > 0)
        if stop > 0:
            self._preempt(epoch, step + 1, self.epoch_sums)

    def _check_input_bound(self, epoch: int, share: float) -> None:
        """Say once per run, with the remedies, when training spends too long waiting for data."""
        if share <= INPUT_BOUND_SHARE or self.warned_input_bound or not is_main_process():
            return
        self.warned_input_bound = True
        logger.warning(
            "training is input-bound: %.0f%% of epoch %d so far went to waiting for the next batch. Remedies: "
            "more loader processes (data.num_workers=%d now, %s CPU cores here), videos re-encoded with a short "
            "key-frame interval and a smaller short side, or a faster disk for data.root",
            100 * share, epoch + 1, self.train_loader.num_workers, usable_cores(),
        )

    def _precise_bn(self) -> None:
        """Recompute BatchNorm statistics (``optim.precise_bn_iters`` training batches) of the
        model and, with EMA, of the EMA model: both are evaluated or saved."""
        def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
            with autocast(self.device, self.config.runtime.amp):
                model(self.train_set.normalize(batch[0].to(self.device, non_blocking=True)))

        for model in {id(m): m for m in (self.model, self.eval_model)}.values():
            recompute_bn_stats(model, self.train_loader, self.config.optim.precise_bn_iters, forward)

    def _lr(self) -> float:
        """The schedule's LR now: that of the groups without layer decay (the head's)."""
        return max(self.scheduler.get_last_lr())

    def _optimizer_step(self) -> bool:
        """Clip, step (unless a gradient is NaN or Inf), schedule -> whether the weights were updated."""
        c = self.config
        self.scaler.unscale_(self.optimizer)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norm = nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        finite = bool(torch.isfinite(norm))
        if finite and c.optim.clip_grad > 0:
            nn.utils.clip_grads_with_norm_(self.model.parameters(), c.optim.clip_grad, norm)
        if finite or self.scaler.is_enabled():  # fp16: the scaler skips the step itself and lowers its scale
            self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if finite and self.ema is not None:
            self.ema.update(self.model)
        return finite

    def _finish(self, best: dict[str, Any], wall: float) -> dict[str, Any]:
        rows = _read_rows(self.out / METRICS)
        last = rows[-1] if rows else {}
        summary = {
            "best_val_top1": best["top1"] if self.val_set is not None else None,
            "best_epoch": best["epoch"], "final_val_top1": last.get("val_top1"),
            "params": self.params, "gflops_per_view": self._gflops_per_view(), "wall_time_s": wall,
            "train_clips_per_s": float(np.median([r["train_clips_per_s"] for r in rows])) if rows else None,
            "epochs": len(rows), "backbone": self.config.model.backbone, "temporal": self.config.model.temporal,
            "num_frames": self.config.model.num_frames, "num_classes": self.num_classes,
            "broken_files": self.train_set.broken, "device": str(self.device),
            "data_workers": self.train_loader.num_workers,
        }
        write_text_atomic(self.out / SUMMARY, json.dumps(summary, indent=2))
        if rows:
            with atomic_path(self.out / CURVES) as tmp:
                plot_training_curves({self.config.model.temporal: rows}, tmp)
        return summary


    def _gflops_per_view(self) -> float:
        """GFLOPs of one view: traced once per run directory, on a CPU model of the same
        architecture (FLOPs do not depend on the weights), and cached in ``flops.json``."""
        path = self.out / FLOPS
        if path.is_file():
            return json.loads(path.read_text())["gflops_per_view"]
        c = self.config
        model = build_model(c, self.num_classes, pretrained=False)
        clip = torch.zeros(1, c.model.num_frames, model.in_chans, c.model.img_size, c.model.img_size)
        gflops = count_flops(model, clip) / 1e9
        write_text_atomic(path, json.dumps({"gflops_per_view": gflops}) + "\n")
        return gflops


def _read_rows(path: Path) -> list[dict[str, Any]]:
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


def train(config: Config, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train as ``config`` says; returns summary.json's content (empty on ranks other than 0).
    ``resume`` continues the run in ``runtime.output``; ``overwrite`` replaces a run found there."""
    try:
        return Trainer(config, resume=resume, overwrite=overwrite).fit()
    finally:
        cleanup()
