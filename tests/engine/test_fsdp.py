"""runtime.strategy=fsdp: the blocks it shards, its precision policy, its refusals, and (two gloo
processes under torchrun, with activation checkpointing) the same weights as DDP and an exact resume
after a stop and a SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import laps
from laps.engine import checkpoint as ckpt
from laps.engine.builders import build_model, freeze
from laps.engine.config import load_config
from laps.engine.sharding import check_resumable, mixed_precision, transformer_blocks
from laps.errors import ConfigError
from tests.engine.test_preemption import _rank_pids

FLAGS = ["--model", "vit_tiny_patch16_224", "--img-size", "32", "--num-frames", "4", "--sampling-rate", "2",
         "--batch-size", "4", "--lr", "0.001", "--seed", "0", "--train-list", "train.txt", "--val-list", "val.txt",
         "--epochs", "3", "model.patch_size=16", "model.depth=2", "data.scale_min=32", "data.scale_max=36",
         "data.num_workers=0", "runtime.progress=false", "model.drop_path=0.1", "optim.mixup=0.2",
         # what must keep working when sharded: accumulation, clipping, EMA, layer decay, partial training
         "optim.accum_steps=2", "optim.clip_grad=0.5", "optim.ema_decay=0.5", "optim.layer_decay=0.8",
         "optim.train=last:1"]
#: a convolutional stage with BatchNorm and two attention stages, one epoch
VISFORMER_FLAGS = ["--model", "visformer_tiny", "--img-size", "32", "--num-frames", "4", "--sampling-rate", "2",
                   "--batch-size", "4", "--lr", "0.001", "--seed", "0", "--train-list", "train.txt", "--val-list",
                   "val.txt", "--epochs", "1", "data.scale_min=32", "data.scale_max=36", "data.num_workers=0",
                   "runtime.progress=false", "optim.warmup_epochs=0", "optim.precise_bn_iters=2", "optim.ema_decay=0.5"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_the_blocks_found_are_each_familys_transformer_blocks():
    vit = laps.create_model("vit_tiny_patch16_224", num_frames=2, num_classes=3, img_size=32, patch_size=16, depth=3)
    assert transformer_blocks(vit) == list(vit.backbone.blocks)
    visformer = laps.create_model("visformer_tiny", num_frames=2, num_classes=3, img_size=32, depth=(1, 1, 1))
    b = visformer.backbone
    assert transformer_blocks(visformer) == [*b.stage1, *b.stage2, *b.stage3]


def test_the_precision_policy_follows_runtime_amp():
    bf16, none = mixed_precision("bf16"), mixed_precision("none")
    assert (bf16.param_dtype, bf16.reduce_dtype) == (torch.bfloat16, torch.float32)
    assert (none.param_dtype, none.reduce_dtype) == (None, None)


def test_fsdp_refuses_fp16_and_unknown_strategies():
    assert load_config(None, {"runtime.strategy": "fsdp", "runtime.amp": "bf16"}).runtime.strategy == "fsdp"
    with pytest.raises(ConfigError, match="runtime.strategy=fsdp trains in runtime.amp=bf16 or none"):
        load_config(None, {"runtime.strategy": "fsdp", "runtime.amp": "fp16"})
    with pytest.raises(ConfigError, match="runtime.strategy='zero' is not allowed; choose one of ddp, fsdp"):
        load_config(None, {"runtime.strategy": "zero"})


def test_a_state_resumes_only_under_the_kind_of_run_that_wrote_it():
    check_resumable({"sharded": True}, True, "state.pt")
    check_resumable({}, False, "state.pt")  # written before the key existed: replicated
    with pytest.raises(ConfigError, match=r"state.pt was written by a sharded .* with the runtime.strategy"):
        check_resumable({"sharded": True}, False, "state.pt")
    with pytest.raises(ConfigError, match=r"written by a replicated \(ddp or one process\) run"):
        check_resumable({"sharded": False}, True, "state.pt")
    # runtime.strategy=fsdp given, torchrun missing: the message says what is missing
    with pytest.raises(ConfigError, match=r"this run is one process: resume it under torchrun") as err:
        check_resumable({"sharded": True}, False, "state.pt", "fsdp")
    assert "runtime.strategy it started with" not in str(err.value)


def _torchrun(data, out, strategy, *extra, flags=FLAGS):
    """The command of a 2-process run; a sharded ViT also checkpoints activations (the blocks gather
    their parameters again when they are recomputed), which changes no gradient. (A Visformer does
    not: its BatchNorm layers would count the recomputed batches in their running statistics.)"""
    checkpointing = ["model.grad_checkpointing=true"] if strategy == "fsdp" and flags is FLAGS else []
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29563",
            "-m", "laps", "train", "--data-root", str(data), "--output", str(out), *flags,
            f"runtime.strategy={strategy}", *checkpointing, *extra]


def _rows(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "train_clips_per_s", "data_wait_share")} for r in rows]


@pytest.fixture(scope="module")
def fsdp_run(tiny_data, tmp_path_factory):
    """An uninterrupted FSDP run of 3 epochs."""
    out = tmp_path_factory.mktemp("fsdp") / "run"
    subprocess.run(_torchrun(tiny_data, out, "fsdp"), check=True, env=ENV, capture_output=True, timeout=300)
    return out


def _max_difference(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.slow
def test_an_fsdp_run_ends_with_the_weights_of_the_ddp_run(tiny_data, tmp_path, fsdp_run):
    ddp_run = tmp_path / "ddp"
    subprocess.run(_torchrun(tiny_data, ddp_run, "ddp"), check=True, env=ENV, capture_output=True, timeout=300)
    for name in ("model.safetensors", "last.safetensors"):  # the EMA weights, full and timm-keyed
        assert _max_difference(load_file(fsdp_run / name), load_file(ddp_run / name)) < 1e-5, name
    sharded, replicated = ckpt.load_state(fsdp_run / ckpt.STATE), ckpt.load_state(ddp_run / ckpt.STATE)
    assert _max_difference(sharded["model"], replicated["model"]) < 1e-5
    # optim.train=last:1: the frozen parameters (first block, patch embedding, tokens) have no optimizer state
    config = load_config(None, {"model.depth": 2, "model.patch_size": 16, "model.img_size": 32, "model.num_frames": 4})
    model = build_model(config, num_classes=10, pretrained=False)
    freeze(model, "last:1")
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trained and not any(name.startswith("backbone.blocks.0.") for name in trained)
    assert set(sharded["optimizer"]["state"]) == trained
    loaded = laps.from_pretrained(fsdp_run)  # in this process, without torch.distributed
    assert not torch.distributed.is_initialized()
    assert _max_difference(loaded.backbone.state_dict(), load_file(fsdp_run / "model.safetensors")) == 0


@pytest.mark.slow
def test_a_stopped_and_a_killed_fsdp_run_resume_to_the_uninterrupted_weights(tiny_data, tmp_path, fsdp_run):
    """SIGUSR1 to rank 1 alone stops both processes at the same step with a checkpoint of it; the
    resumed run is then SIGKILLed (both processes, no checkpoint) after an epoch; the second resume
    ends with the uninterrupted run's metrics and weights."""
    run = tmp_path / "run"

    def launch(*extra):
        return subprocess.Popen(_torchrun(tiny_data, run, "fsdp", *extra), env=ENV, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def wait_for_rows(count):
        deadline = time.time() + 120
        while time.time() < deadline and not ((run / "metrics.jsonl").is_file() and len(_rows(run)) >= count):
            time.sleep(0.01)

    launcher = launch()
    wait_for_rows(0)  # training has begun
    time.sleep(0.3)
    os.kill(_rank_pids(launcher.pid)[1], signal.SIGUSR1)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0 and "stopped by SIGUSR1" in err, err[-3000:]
    stopped_after = len(_rows(run))
    assert stopped_after < 3

    launcher = launch("--resume")
    wait_for_rows(stopped_after + 1)
    os.killpg(launcher.pid, signal.SIGKILL)
    launcher.wait(timeout=60)
    assert len(_rows(run)) < 3, "the run ended before it was killed"

    resumed = subprocess.run(_torchrun(tiny_data, run, "fsdp", "--resume"), env=ENV, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = _rows(run), _rows(fsdp_run)
    assert [r["epoch"] for r in a] == [1, 2, 3]
    for x, y in zip(a, b):  # the per-epoch sums were reduced at the stop: equal up to summation order
        assert x == {**y, "train_loss": pytest.approx(y["train_loss"], rel=1e-9)}
    for name in ("model.safetensors", "last.safetensors"):
        w, v = load_file(run / name), load_file(fsdp_run / name)
        assert all(torch.equal(w[k], v[k]) for k in w), name


@pytest.mark.slow
def test_a_sharded_visformer_with_precise_bn_ends_with_the_ddp_runs_weights_and_statistics(tiny_data, tmp_path):
    """Visformer's stages are sharded block by block while its BatchNorm buffers stay whole: precise
    BN and the EMA (which averages the buffers too) end as under DDP."""
    runs = {}
    for strategy in ("ddp", "fsdp"):
        runs[strategy] = tmp_path / strategy
        subprocess.run(_torchrun(tiny_data, runs[strategy], strategy, flags=VISFORMER_FLAGS), check=True, env=ENV,
                       capture_output=True, timeout=300)
    sharded, replicated = load_file(runs["fsdp"] / "model.safetensors"), load_file(runs["ddp"] / "model.safetensors")
    assert any(key.endswith("running_var") for key in sharded)
    assert _max_difference(sharded, replicated) < 1e-5
