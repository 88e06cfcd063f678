"""The training loop: AMP, accumulation, clipping, schedules, mixup, EMA, DDP or FSDP, checkpoints.

:meth:`Trainer.fit` is the loop over epochs and :meth:`Trainer.train_one_epoch` the loop over
batches; the guards (stop signals, broken files, bad steps) are asked at one point after each
optimizer step (:mod:`laps.engine.guards`), and the reports (progress, metrics rows, TensorBoard,
summary) are in :mod:`laps.engine.reporting`.

Determinism and resume: the model's initial weights come from ``seed``, an epoch's data order and
augmentations from ``(seed, epoch)``, and a step's dropout and mixup from ``(seed, epoch, step)``.
A checkpoint is written atomically after every epoch, so a run killed at any point and resumed with
``--resume`` ends with the same metrics as an uninterrupted one (the interrupted epoch is redone
from its start). SIGTERM / SIGUSR1 write a checkpoint of the exact step instead, and ``--resume``
continues from that step (:mod:`laps.engine.preemption`). A model with non-finite weights is never
saved, and the output directory is locked and never clobbered (:mod:`laps.engine.run_dir`).

The same seed, config and thread count give the same metrics and weights to the bit, whatever the
load on the machine and the number of loader processes. ``runtime.threads: auto`` is resolved once,
from the cores this process may use (:func:`~laps.engine.runtime.resolve_threads`), written to the
run's config.yaml and kept by ``--resume``.

The trainer seeds torch's RNGs and sets ``runtime.threads`` only inside
:func:`torch.random.fork_rng` and for the length of :meth:`Trainer.fit`: the caller's random state
and thread count are what they were afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch import nn

from laps.analysis.flops import count_params
from laps.data import build_loader, set_epoch
from laps.data.dataset import VideoDataset
from laps.engine import checkpoint as ckpt
from laps.engine.builders import (
    build_dataset,
    build_model,
    build_optimizer,
    class_names,
    config_feed,
    freeze,
    read_split,
    set_train_mode,
)
from laps.engine.config import Config, save_config
from laps.engine.guards import Guards
from laps.engine.loader_wait import batches, loader_limit
from laps.engine.precise_bn import recompute_bn_stats
from laps.engine.reporting import INPUT_BOUND_MIN_STEPS, Best, EpochMeter, InputBoundCheck, Reporter, gflops_per_view
from laps.engine.run_dir import FLOPS, RunLock, claim_output, run_mode
from laps.engine.runtime import resolve_threads
from laps.engine.sharding import (
    check_resumable,
    full_optimizer_state,
    full_state,
    load_full_optimizer_state,
    load_full_state,
    local,
    shard,
    training_module,
)
from laps.engine.steps import build_scheduler, mix_batch, step_seed
from laps.errors import ConfigError, Preempted
from laps.infer.device import resolve_device
from laps.infer.distributed import cleanup, init_distributed, is_main_process, rank, world_size
from laps.infer.evaluate import evaluate
from laps.infer.predict import autocast
from laps.infer.runtime import seeded, threads

__all__ = ["Trainer", "train"]

logger = logging.getLogger(__name__)

class Trainer:
    """One training run, configured by a :class:`Config`; call :meth:`fit`."""

    def __init__(self, config: Config, resume: bool = False, overwrite: bool = False) -> None:
        self.out = Path(config.runtime.output)
        self.resume, self.overwrite = resume, overwrite = run_mode(self.out, resume, overwrite)
        threads = resolve_threads(config.runtime.threads, self.out / ckpt.CONFIG if resume else None)
        c = self.config = dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, threads=threads))
        self.device = resolve_device(c.runtime.device)
        if c.runtime.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("runtime.amp=fp16 needs CUDA; use runtime.amp=bf16 on CPU")
        self.distributed = init_distributed(self.device)
        if self.device.type == "cuda" and self.distributed:
            torch.cuda.set_device(rank() % torch.cuda.device_count())
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.guards = Guards(c, self.out, self.distributed)
        self.report = Reporter(self.out, c.optim.epochs, enabled=is_main_process())
        self.wall = 0.0  # training seconds of the finished epochs, over resumes
        self.epoch_began = 0.0  # time.perf_counter() at the start of the current epoch
        self.meter: EpochMeter | None = None  # the current epoch's sums, rates and progress
        self.input_bound = InputBoundCheck(enabled=is_main_process())

        self.classes, self.train_set, self.val_set = self._datasets()
        self.num_classes = len(self.classes)
        self.best = Best("val_top1" if self.val_set is not None else "train_loss")
        per_rank = c.optim.batch_size // world_size()
        if per_rank * world_size() != c.optim.batch_size:
            raise ConfigError(f"optim.batch_size={c.optim.batch_size} must be divisible by the {world_size()} processes")
        if len(self.train_set) < c.optim.batch_size:
            raise ConfigError(f"optim.batch_size={c.optim.batch_size} is larger than the {len(self.train_set)} training videos")
        split = {"num_workers": c.data.num_workers, "num_replicas": world_size(), "rank": rank(),
                 "timeout": c.data.loader_timeout}
        self.train_loader = build_loader(self.train_set, per_rank, train=True, seed=c.runtime.seed, **split)
        self.val_loader = build_loader(self.val_set, per_rank, train=False, **split) if self.val_set is not None else None

        with seeded(c.runtime.seed, self.device):
            self.model = build_model(c, self.num_classes, pretrained=not resume, classes=self.classes).to(self.device)
        self.video_cfg = ckpt.model_config(self.model, config_feed(c), self.classes)  # what its checkpoints say
        freeze(self.model, c.optim.train)
        self.params = count_params(self.model)
        self.sharded = self.distributed and c.runtime.strategy == "fsdp"
        # sharded, the EMA is sharded like the model, and updated a tensor at a time (buffers are not DTensors)
        self.ema = (ModelEmaV3(self.model, decay=c.optim.ema_decay, foreach=not self.sharded)
                    if c.optim.ema_decay > 0 else None)
        for model in {id(m): m for m in (self.model, self.eval_model)}.values() if self.sharded else []:
            shard(model, c.runtime.amp, self.device)
        self.optimizer = build_optimizer(self.model, c)
        self.steps_per_epoch = max(1, len(self.train_loader) // c.optim.accum_steps)
        self.scheduler = build_scheduler(self.optimizer, self.steps_per_epoch, c.optim)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=c.runtime.amp == "fp16")
        self.net = training_module(self.model, self.distributed)
        if c.runtime.compile:
            self.net = torch.compile(self.net)

    def _datasets(self) -> tuple[list[str], VideoDataset, VideoDataset | None]:
        """The class names and the training and validation sets, checked by the guards' preflight."""
        c = self.config
        train_records, train_root = read_split(c, "train_list")
        classes = class_names(c, train_records)
        val_records, val_root = read_split(c, "val_list", classes) if c.data.val_list else (None, "")
        train_set = build_dataset(c, train_records, train_root, train=True)
        val_set = build_dataset(c, val_records, val_root, train=False, views=c.data.val_views) if val_records else None
        for split, dataset in (("train", train_set), ("val", val_set)):
            if dataset is not None:
                self.guards.preflight(split, dataset, len(classes))
        return classes, train_set, val_set

    @property
    def eval_model(self) -> nn.Module:
        """The model that is evaluated and saved: the EMA model when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any]:
        """Train every remaining epoch -> summary.json's content (empty on ranks other than 0).

        Raises :class:`Preempted` after writing a checkpoint when SIGTERM or SIGUSR1 arrives,
        :class:`TrainingDiverged` and :class:`TooManyBrokenFiles` when the run cannot go on."""
        c = self.config
        lock = RunLock(self.out) if is_main_process() else nullcontext()
        with (seeded(c.runtime.seed, self.device), threads(c.runtime.threads), self.guards, lock,
              loader_limit(self.train_loader, self.val_loader)):
            if is_main_process():
                claim_output(self.out, self.resume, self.overwrite)
            start_epoch, start_step, carried = self._restore() if self.resume else (0, 0, None)
            if is_main_process():
                self._prepare_output(start_epoch)
                if start_epoch >= c.optim.epochs:
                    logger.info("the run in %s has already finished its %d epochs: nothing to train (raise "
                                "optim.epochs to train it further); its summary:", self.out, c.optim.epochs)
                else:
                    logger.info("training %s/%s in %s from epoch %d%s; SIGTERM or SIGUSR1 checkpoints and exits "
                                "with code %d", c.model.backbone, c.model.temporal, self.out, start_epoch + 1,
                                f" batch {start_step}" if start_step else "", Preempted.exit_code)
            try:
                for epoch in range(start_epoch, c.optim.epochs):
                    self.epoch_began = time.perf_counter()
                    resumed = epoch == start_epoch
                    row = {"epoch": epoch + 1, **self.train_one_epoch(epoch, start_step if resumed else 0,
                                                                      carried if resumed else None)}
                    if self.val_set is not None and ((epoch + 1) % c.runtime.eval_every == 0 or epoch + 1 == c.optim.epochs):
                        row.update(self.validate(epoch))
                    self.wall += time.perf_counter() - self.epoch_began
                    row["wall_time_s"] = self.wall
                    self._save_epoch(epoch, row, self.best.update(row, epoch + 1))
                    if epoch + 1 < c.optim.epochs and self.guards.stop_agreed():
                        raise Preempted(f"stopped by {self.guards.stop.name} after epoch {epoch + 1}; its checkpoint "
                                        f"is {self.out / ckpt.STATE}: run the same command with --resume to continue")
                return self._finish() if is_main_process() else {}
            finally:
                self.report.close()

    def train_one_epoch(self, epoch: int, start: int = 0, carried: dict[str, float] | None = None) -> dict[str, float]:
        """Train one epoch from batch ``start`` (a resumed run), with the epoch's sums before the
        resume (over all processes) ``carried`` -> its row of training metrics."""
        c = self.config
        set_epoch(self.train_loader, epoch, start_batch=start)
        set_train_mode(self.net)
        waits = batches(self.train_loader, self.guards.stop, lambda at: self._stop_waiting(epoch, at), start)
        meter = self.meter = EpochMeter(waits, len(self.train_loader), f"epoch {epoch + 1}/{c.optim.epochs}", start,
                                        world_size(), enabled=c.runtime.progress and is_main_process(),
                                        every_s=c.runtime.log_every_s, carried=carried)
        self.optimizer.zero_grad(set_to_none=True)
        step = start - 1
        for step, (clips, labels) in enumerate(meter, start):
            logits, labels, loss = self._forward_backward(epoch, step, clips, labels)
            meter.add(loss, logits, labels)  # float(loss) waited for the device
            if (step + 1) % c.optim.accum_steps == 0:
                self._step(epoch, step)
            meter.show(self._lr())
            if step + 1 == INPUT_BOUND_MIN_STEPS:
                self.input_bound.check(epoch, meter.waited, meter.elapsed, self.train_loader.num_workers)
        if step + 1 < INPUT_BOUND_MIN_STEPS:
            self.input_bound.check(epoch, meter.waited, meter.elapsed, self.train_loader.num_workers)
        set_epoch(self.train_loader, epoch)  # precise BN reads the epoch from its first batch
        totals = meter.totals()
        count = totals["count"]
        return {
            "train_loss": totals["loss"] / count if count else math.nan, "train_top1": totals["correct"] / max(count, 1),
            "lr": self._lr(), **meter.rates(), "broken_files": self.train_set.broken,
            "skipped_steps": totals["skipped"],
        }

    def _forward_backward(self, epoch: int, step: int, clips: torch.Tensor,
                          labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """uint8 ``clips (B, T, C, H, W)``: mixed, forward, backward -> ``(logits (B, K), labels (B,), loss)``."""
        c = self.config
        torch.manual_seed(step_seed(c.runtime.seed, epoch, step))  # dropout and drop-path
        mix_generator = torch.Generator().manual_seed(step_seed(c.runtime.seed, epoch, step, 1))
        clips = self.train_set.normalize(clips.to(self.device, non_blocking=True))  # uint8 until here
        labels = labels.to(self.device, non_blocking=True)
        mixed, targets = mix_batch(clips, labels, self.num_classes, mix_generator, mixup=c.optim.mixup,
                                   cutmix=c.optim.cutmix, label_smoothing=c.optim.label_smoothing)
        with autocast(self.device, c.runtime.amp):
            logits = self.net(mixed)
        loss = torch.sum(-targets * logits.float().log_softmax(-1), dim=-1).mean()
        # always backward, also for a non-finite loss: every process must join the gradient
        # all-reduce (DDP) or reduce-scatter (FSDP, also on the accumulation steps: gradients
        # stay sharded), and the non-finite gradient then skips the step on all of them
        self.scaler.scale(loss / c.optim.accum_steps).backward()
        return logits, labels, float(loss.detach())

    def _step(self, epoch: int, step: int) -> None:
        """The optimizer step after batch ``step`` (counted when skipped), then the guards' checks."""
        stepped = self._optimizer_step()
        self.meter.sums["skipped"] += not stepped
        if self.guards.after_step(epoch, step, stepped, self.train_set, last=step + 1 == len(self.train_loader)):
            self._preempt(epoch, step + 1)

    def _optimizer_step(self) -> bool:
        """Clip, step (unless a gradient is NaN or Inf), schedule -> whether the weights were updated."""
        c = self.config
        self.scaler.unscale_(self.optimizer)
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        norm = nn.utils.get_total_norm(grads) if grads else torch.zeros(())  # of every shard under FSDP
        finite = bool(torch.isfinite(local(norm)))
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

    def validate(self, epoch: int) -> dict[str, float]:
        """Evaluate the (EMA) model after ``epoch`` -> its validation row; on a stop signal, a
        checkpoint that redoes the evaluation on resume, not the training."""
        c = self.config
        self._precise_bn()
        result = evaluate(self.eval_model, self.val_loader, self.num_classes, c.runtime.amp, c.runtime.progress,
                          desc=f"val {epoch + 1}", should_stop=self.guards.stop_agreed,
                          iterate=lambda loader: batches(loader, self.guards.stop, lambda _: self._stop_waiting(epoch)))
        if result is None:
            self._preempt(epoch, len(self.train_loader))
        self.guards.check_broken("val", self.val_set, self.guards.agreed([self.guards.too_many_broken(self.val_set)])[0] > 0)
        return {"val_loss": result["loss"], "val_top1": result["top1"], "val_top5": result["top5"],
                "val_mean_class_acc": result["mean_class_acc"]}

    # ------------------------------------------------------------------ helpers of the loop
    def _precise_bn(self) -> None:
        """Recompute BatchNorm statistics (``optim.precise_bn_iters`` training batches) of the
        model and, with EMA, of the EMA model: both are evaluated or saved."""
        def forward(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
            with autocast(self.device, self.config.runtime.amp):
                model(self.train_set.normalize(batch[0].to(self.device, non_blocking=True)))

        for model in {id(m): m for m in (self.model, self.eval_model)}.values():
            recompute_bn_stats(model, self.train_loader, self.config.optim.precise_bn_iters, forward)

    def _lr(self) -> float:  # the schedule's LR now: that of the groups without layer decay (the head's)
        return max(self.scheduler.get_last_lr())

    # ------------------------------------------------------------------ checkpoints
    def _gather(self) -> dict[str, dict[str, Any]]:
        """The full model, optimizer and EMA states on rank 0 (empty elsewhere); every process calls it."""
        state = {"model": full_state(self.model), "optimizer": full_optimizer_state(self.model, self.optimizer)}
        return {**state, "ema": full_state(self.ema.module)} if self.ema is not None else state

    def _state(self, epoch: int, wall: float, gathered: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            "epoch": epoch, **gathered, "sharded": self.sharded, "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "best": dataclasses.asdict(self.best), "wall_time_s": wall,
            "config": self.config.to_dict(),
        }

    def _restore(self) -> tuple[int, int, dict[str, float] | None]:
        """Load the newest good training state -> (epoch, step to start at, the epoch's metric sums
        so far when it stopped mid-epoch)."""
        state, source = ckpt.load_resume_state(self.out), str(self.out / ckpt.STATE)
        check_resumable(state, self.sharded, source, self.config.runtime.strategy)
        load_full_state(self.model, state["model"], source)
        load_full_optimizer_state(self.model, self.optimizer, state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            load_full_state(self.ema.module, state["ema"], source)
        self.best, self.wall = Best(**state["best"]), state["wall_time_s"]
        at = state.get("resume_at")
        if at is not None:
            return at["epoch"], at["step"], at["sums"]
        return state["epoch"] + 1, 0, None

    def _save_epoch(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        """Metrics row, weights, then the training state (written by rank 0; every process calls
        it): the state is the commit point of an epoch, so a process killed anywhere in here redoes
        exactly this epoch on resume."""
        gathered = self._gather()
        if not is_main_process():
            return
        weights = gathered.get("ema", gathered["model"])
        self.guards.check_finite(gathered["model"], weights)
        self.report.epoch_row(row)
        ckpt.save_epoch_weights(self.eval_model, self.out, self.video_cfg, weights, improved)
        ckpt.save_state(self._state(epoch, self.wall, gathered), self.out / ckpt.STATE, self.out / ckpt.PREVIOUS_STATE)

    def _preempt(self, epoch: int, step: int) -> None:
        """Write a checkpoint that resumes at batch ``step`` of ``epoch`` (with the epoch's metric
        sums so far, over all processes), then raise :class:`Preempted`."""
        totals, gathered = self.meter.totals(), self._gather()
        path = self.out / ckpt.STATE
        if is_main_process():
            self.guards.check_finite(gathered["model"], gathered.get("ema", gathered["model"]))
            state = self._state(epoch - 1, self.wall + time.perf_counter() - self.epoch_began, gathered)
            state["resume_at"] = {"epoch": epoch, "step": step, "sums": totals}
            ckpt.save_state(state, path, self.out / ckpt.PREVIOUS_STATE)
            logger.warning("checkpoint of epoch %d, batch %d/%d written to %s", epoch + 1, step,
                           len(self.train_loader), path)
        raise Preempted(f"stopped by {self.guards.stop.name} in epoch {epoch + 1} after batch {step}/"
                        f"{len(self.train_loader)}; the checkpoint is {path}: run the same command with --resume "
                        "to continue from there")

    def _stop_waiting(self, epoch: int, step: int | None = None) -> None:
        """A stop signal during the wait for batch ``step`` (None: for validation): checkpoint there or keep the last."""
        if not self.distributed and (step is None or step % self.config.optim.accum_steps == 0):
            self._preempt(epoch, len(self.train_loader) if step is None else step)
        batch = "a validation batch" if step is None else f"batch {step + 1}"
        raise Preempted(f"stopped by {self.guards.stop.name} waiting for {batch} of epoch {epoch + 1}; the "
                        f"checkpoint {self.out / ckpt.STATE} is kept: run the same command with --resume to continue")

    # ------------------------------------------------------------------ the run directory
    def _prepare_output(self, start_epoch: int) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if start_epoch == 0:
            (self.out / FLOPS).unlink(missing_ok=True)
        self.report.open(start_epoch)
        save_config(self.config, self.out / ckpt.CONFIG)
        ckpt.write_model_config(self.out, self.video_cfg)

    def _finish(self) -> dict[str, Any]:
        rows = self.report.rows()
        c = self.config
        summary = {
            "best_val_top1": self.best.value if self.best.metric == "val_top1" else None,
            "best_epoch": self.best.epoch, "best_metric": self.best.metric, "best_value": self.best.value,
            "final_val_top1": rows[-1].get("val_top1") if rows else None,
            "params": self.params, "gflops_per_view": gflops_per_view(self.out / FLOPS, c, self.num_classes),
            "wall_time_s": self.wall,
            "train_clips_per_s": float(np.median([r["train_clips_per_s"] for r in rows])) if rows else None,
            "epochs": len(rows), "backbone": c.model.backbone, "temporal": c.model.temporal,
            "num_frames": c.model.num_frames, "num_classes": self.num_classes, "train": c.optim.train,
            "broken_files": self.train_set.broken, "device": str(self.device),
            "data_workers": self.train_loader.num_workers, "cpu_threads": c.runtime.threads,
        }
        self.report.summary(summary, rows, c.model.temporal)
        return summary


def train(config: Config, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train as ``config`` says; returns summary.json's content (empty on ranks other than 0).
    ``resume`` continues the run in ``runtime.output``; ``overwrite`` replaces a run found there."""
    try:
        return Trainer(config, resume=resume, overwrite=overwrite).fit()
    finally:
        cleanup()
