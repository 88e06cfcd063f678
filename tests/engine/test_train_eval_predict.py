"""End to end on tiny generated data: train, eval, predict; resume after SIGKILL; DDP; errors."""

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from laps.cli import main
from laps.engine.checkpoint import load_state
from laps.engine.trainer import train
from laps.integrity import BYTES_KEY, DIGEST_KEY
from tests.helpers import tiny_config

RUN_FILES = ("model.safetensors", "config.json", "last.safetensors", "state.pt", "config.yaml", "metrics.jsonl",
             "summary.json", "curves.png")
CLI_FLAGS = ["--model", "vit_tiny_patch16_224", "--img-size", "32", "--num-frames", "4", "--sampling-rate", "2",
             "--batch-size", "4", "--lr", "0.001", "--seed", "0", "--train-list", "train.txt", "--val-list", "val.txt",
             "model.patch_size=16", "model.depth=1", "data.scale_min=32", "data.scale_max=36", "data.num_workers=0",
             "runtime.progress=false"]


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("wall_time_s", "train_clips_per_s", "data_wait_share")} for row in rows]


@pytest.fixture(scope="module")
def trained_run(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    summary = train(tiny_config(tiny_data, out))
    return out, summary


@pytest.mark.slow
def test_train_writes_a_complete_run_directory(trained_run):
    out, summary = trained_run
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    assert len(_metrics(out)) == 2
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert {"best_val_top1", "best_epoch", "params", "gflops_per_view", "wall_time_s"} <= set(summary)
    rows = _metrics(out)
    best = max(range(len(rows)), key=lambda i: rows[i]["val_top1"])
    assert (summary["best_val_top1"], summary["best_epoch"]) == (rows[best]["val_top1"], best + 1)
    assert summary["final_val_top1"] == rows[-1]["val_top1"]
    assert summary["params"] == sum(t.numel() for t in load_file(out / "last.safetensors").values())
    from laps.analysis.flops import model_cost

    cost = model_cost("vit_tiny_patch16_224", "laps", 4, 32, 10, patch_size=16, depth=1)
    assert summary["gflops_per_view"] == pytest.approx(cost["gflops"], rel=1e-9)
    assert json.loads((out / "flops.json").read_text())["gflops_per_view"] == summary["gflops_per_view"]
    state = load_state(out / "state.pt")  # weights_only=True inside
    assert state["epoch"] == 1 and "optimizer" in state and "scheduler" in state
    weights = load_file(out / "last.safetensors")
    # weights files in timm's image format, the training state in the model's own keys
    assert {"backbone." + key for key in weights} == state["model"].keys()
    assert any((out / "tensorboard").iterdir())


@pytest.mark.slow
def test_eval_cli_writes_metrics(trained_run, tiny_data, tmp_path, capsys):
    out, _ = trained_run
    code = main(["eval", "--checkpoint", str(out), "--data-root", str(tiny_data), "--list", "val.txt",  # under the root
                 "--views", "2x3", "--output", str(tmp_path), "--workers", "0"])
    assert code == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["views"] == "2x3" and result["num_videos"] == 10
    for name in ("confusion.csv", "confusion.png", "predictions.csv"):
        assert (tmp_path / name).is_file()
    import csv

    with open(tmp_path / "predictions.csv") as f:
        predictions = list(csv.DictReader(f))
    assert len(predictions) == 10
    hits = {}  # label -> [correct?]
    for row in predictions:
        hits.setdefault(row["label"], []).append(row["pred"] == row["label"])
    assert result["top1"] == pytest.approx(sum(sum(h) for h in hits.values()) / 10)
    assert result["mean_class_acc"] == pytest.approx(sum(sum(h) / len(h) for h in hits.values()) / len(hits))
    assert result["top5"] >= result["top1"]


@pytest.mark.slow
def test_predict_cli_json_reports_broken_files_and_exit_1(trained_run, tiny_data, tmp_path, capsys):
    out, _ = trained_run
    video = tiny_data / "videos" / "drifting_left" / "drifting_left_0002.mp4"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    code = main(["predict", "--checkpoint", str(out / "model.safetensors"), "--json", "--top-k", "3", str(video), str(broken)])
    results = json.loads(capsys.readouterr().out)
    assert code == 1
    assert results[0]["path"] == str(video) and len(results[0]["top"]) == 3
    main(["predict", "--checkpoint", str(out / "model.safetensors"), "--json", "--top-k", "10", str(video)])
    every = json.loads(capsys.readouterr().out)[0]["top"]  # all ten classes: a distribution, best first
    assert sum(t["prob"] for t in every) == pytest.approx(1.0, abs=1e-5)
    assert [t["prob"] for t in every] == sorted((t["prob"] for t in every), reverse=True)
    assert results[0]["top"] == every[:3] and len({t["label"] for t in every}) == 10
    assert results[0]["top"][0]["label"] in json.loads((out / "config.json").read_text())["classes"]
    assert "error" in results[1]
    assert main(["predict", "--checkpoint", str(out), str(video)]) == 0


@pytest.mark.slow
def test_checkpoint_from_another_model_gives_clear_error(trained_run, tiny_data, tmp_path, capsys):
    out, _ = trained_run
    weights = load_file(out / "model.safetensors")
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        metadata = f.metadata()
    config = json.loads(metadata["laps_config"])
    config["timm_kwargs"]["depth"] = 2  # claims a deeper model than the weights hold
    metadata = {k: v for k, v in metadata.items() if k not in (DIGEST_KEY, BYTES_KEY)}  # as a tool without checksums
    save_file(weights, str(tmp_path / "other.safetensors"), metadata={**metadata, "laps_config": json.dumps(config)})
    video = tiny_data / "videos" / "drifting_left" / "drifting_left_0002.mp4"
    assert main(["predict", "--checkpoint", str(tmp_path / "other.safetensors"), str(video)]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not fit this model" in err and "\n" not in err


def test_bad_configs_and_missing_files_fail_with_one_line_and_code_2(tiny_data, tmp_path, capsys):
    cases = [
        (["train", "--data-root", str(tiny_data), "--train-list", "missing.txt"],
         f"data.train_list missing.txt: not found at {Path('missing.txt').absolute()} nor {tiny_data / 'missing.txt'}"),
        (["train", "--data-root", str(tiny_data), "--num-frames", "0"], "model.num_frames=0 must be >= 1"),
        (["train", "--data-root", str(tiny_data), "optim.bogus=1"], "unknown config key"),
        (["train", "--data-root", str(tiny_data), "--epochs", "two"], "optim.epochs: Value 'two' of type 'str' could not be converted to Integer"),
        (["eval", "--checkpoint", str(tmp_path), "--list", str(tiny_data / "val.txt")], "holds no model.safetensors"),
        (["eval", "--checkpoint", str(tmp_path), "--data-root", str(tiny_data), "--list", "test.txt"],
         f"--list test.txt: not found at {Path('test.txt').absolute()} nor {tiny_data / 'test.txt'}"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err, err


def _train_cmd(data, out, *extra):
    return [sys.executable, "-m", "laps", "train", "--data-root", str(data), "--output", str(out), *CLI_FLAGS, *extra]


@pytest.fixture(scope="module")
def uninterrupted_cli_run(tiny_data, tmp_path_factory):
    """A three-epoch ``laps train`` run (in-process loading) that the interrupted runs must end equal to."""
    full = tmp_path_factory.mktemp("full")
    subprocess.run(_train_cmd(tiny_data, full, "--epochs", "3"), check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                   capture_output=True)
    return full


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["0", "1"])  # in process, and a loader worker that lives across epochs
def test_resume_after_sigkill_equals_uninterrupted_run(tiny_data, uninterrupted_cli_run, tmp_path, workers):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = uninterrupted_cli_run

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(tiny_data, killed, f"data.num_workers={workers}", "--epochs", "3"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "state.pt").is_file():
        time.sleep(0.05)
    assert (killed / "state.pt").is_file(), "first epoch never finished"
    proc.send_signal(signal.SIGKILL)  # in epoch 2 (or while writing epoch 1's files)
    proc.wait()
    assert len(_metrics(killed)) < 3
    resumed = subprocess.run(_train_cmd(tiny_data, killed, f"data.num_workers={workers}", "--epochs", "3", "--resume"),
                             env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _metrics(killed) == _metrics(full)
    for name in ("model.safetensors", "last.safetensors"):
        a, b = load_file(killed / name), load_file(full / name)
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tiny_data, tmp_path):
    """Same global batch (4 = 2 ranks x 2), same data order and augmentation: the losses of the
    gloo run (a persistent loader worker per rank) must equal the single-process, in-process-loading
    run's up to float summation order (1e-4 relative)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = tmp_path / "single"
    subprocess.run(_train_cmd(tiny_data, single, "--epochs", "2"), check=True, env=env, capture_output=True)
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "laps", "train", "--data-root", str(tiny_data), "--output", str(ddp), *CLI_FLAGS,
           "data.num_workers=1", "--epochs", "2"]  # each rank with a loader worker that lives across epochs
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=300)
    one, two = _metrics(single), _metrics(ddp)
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_top1"] == pytest.approx(a["val_top1"], abs=1e-6)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)


def _weights(run_dir):
    return load_file(run_dir / "last.safetensors")


@pytest.mark.slow
def test_accumulating_two_half_batches_equals_one_full_batch(tiny_data, tmp_path):
    # SGD: its step is linear in the gradient, so rounding differences stay rounding differences
    common = {"optim.epochs": 1, "data.val_list": "", "optim.optimizer": "sgd", "optim.lr": 0.1}
    train(tiny_config(tiny_data, tmp_path / "full", **common, **{"optim.batch_size": 4}))
    train(tiny_config(tiny_data, tmp_path / "accum", **common, **{"optim.batch_size": 2, "optim.accum_steps": 2}))
    train(tiny_config(tiny_data, tmp_path / "half", **common, **{"optim.batch_size": 2}))
    full, accum, half = (_weights(tmp_path / name) for name in ("full", "accum", "half"))
    # the same steps up to float rounding ...
    assert max(float((accum[key] - full[key]).abs().max()) for key in full) < 1e-5
    # ... while steps of half batches land elsewhere
    assert max(float((half[key] - full[key]).abs().max()) for key in full) > 1e-3


def _recording_trainer(config, record):
    """A Trainer that calls ``record(model)`` before each optimizer step."""
    from laps.engine.trainer import Trainer

    trainer = Trainer(config)
    trainer.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: record(trainer.model))
    return trainer


def _grad_norm(model):
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])))


@pytest.mark.slow
def test_clipping_bounds_the_gradient_norm(tiny_data, tmp_path):
    norms = {}
    for clip in (0.0, 0.05):
        seen = norms.setdefault(clip, [])
        config = tiny_config(tiny_data, tmp_path / str(clip), **{"optim.epochs": 1, "data.val_list": "",
                                                                  "optim.clip_grad": clip})
        _recording_trainer(config, lambda model: seen.append(_grad_norm(model))).fit()
    assert min(norms[0.0]) > 0.05  # the bound is below the raw norms, so clipping has work to do
    assert max(norms[0.05]) <= 0.05 * (1 + 1e-4)


@pytest.mark.slow
def test_bf16_training_computes_in_bf16(tiny_data, tmp_path):
    dtypes = {}
    for amp in ("none", "bf16"):
        config = tiny_config(tiny_data, tmp_path / amp, **{"optim.epochs": 1, "data.val_list": "", "runtime.amp": amp})
        from laps.engine.trainer import Trainer

        trainer = Trainer(config)
        seen = dtypes.setdefault(amp, set())
        linear = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Linear))
        linear.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
        trainer.fit()
    assert dtypes == {"none": {torch.float32}, "bf16": {torch.bfloat16}}


def test_layer_decay_scales_the_lr_of_lower_layers(tiny_data, tmp_path):
    from laps.engine.trainer import Trainer

    trainer = Trainer(tiny_config(tiny_data, tmp_path, **{"optim.layer_decay": 0.5, "optim.lr": 0.1}))
    lrs = {}
    for name, parameter in trainer.model.backbone.named_parameters():
        group = next(g for g in trainer.optimizer.param_groups if any(p is parameter for p in g["params"]))
        lrs[name.split(".")[0]] = group["lr"]
    # depth 1: the head at the full LR, the block at half, the patch embedding at a quarter
    assert lrs["head"] == pytest.approx(0.1) and lrs["blocks"] == pytest.approx(0.05)
    assert lrs["patch_embed"] == pytest.approx(0.025)


@pytest.mark.slow
def test_ema_weights_are_the_ones_evaluated_and_saved(tiny_data, tmp_path):
    train(tiny_config(tiny_data, tmp_path, **{"optim.ema_decay": 0.5, "optim.epochs": 1}))
    state, saved = load_state(tmp_path / "state.pt"), _weights(tmp_path)
    assert all(torch.equal(saved[key], state["ema"]["backbone." + key]) for key in saved)
    assert any(not torch.equal(saved[key], state["model"]["backbone." + key]) for key in saved)


def test_lr_schedules():
    from laps.engine.steps import lr_lambda

    step = lr_lambda(10, schedule="step", epochs=3, milestones=[1, 2])
    assert [step(s) for s in (0, 9, 10, 19, 20)] == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    cosine = lr_lambda(10, schedule="cosine", epochs=3, warmup_epochs=1)
    assert cosine(0) == pytest.approx(0.1) and cosine(9) == pytest.approx(1.0)
    assert cosine(10) == pytest.approx(1.0) and cosine(20) == pytest.approx(0.5) and cosine(30) == pytest.approx(0.0)


def test_mixup_blends_each_clip_with_its_partner_and_its_targets():
    from laps.engine.steps import mix_batch

    clips = torch.rand(2, 3, 1, 8, 8)
    labels = torch.tensor([0, 1])
    mixed, targets = mix_batch(clips, labels, 2, torch.Generator().manual_seed(0), mixup=0.8)
    lam = float(targets[0, 0])
    assert 0 < lam < 1 and targets[0].tolist() == pytest.approx([lam, 1 - lam])
    torch.testing.assert_close(mixed, lam * clips + (1 - lam) * clips.flip(0))


def test_cutmix_pastes_one_box_for_every_frame_and_weights_targets_by_its_area():
    from laps.engine.steps import mix_batch

    clips = torch.rand(2, 3, 1, 16, 16)
    generator = torch.Generator().manual_seed(3)
    for _ in range(5):
        mixed, targets = mix_batch(clips, torch.tensor([0, 1]), 2, generator, cutmix=1.0)
        pasted = (mixed[0] != clips[0]).any(dim=(0, 1))  # (H, W): where the partner shows
        assert torch.equal(mixed[0][..., pasted], clips[1][..., pasted])
        assert all(torch.equal((mixed[0, t] != clips[0, t]).any(0), pasted) for t in range(3))  # same box, all frames
        assert float(targets[0, 1]) == pytest.approx(float(pasted.float().mean()))


@pytest.mark.slow
def test_training_leaves_the_callers_random_state_and_thread_count_alone(tiny_data, tmp_path):
    torch.manual_seed(123)
    before, threads = torch.get_rng_state(), torch.get_num_threads()
    train(tiny_config(tiny_data, tmp_path, **{"optim.epochs": 1, "runtime.threads": 1, "runtime.seed": 7}))
    assert torch.equal(torch.get_rng_state(), before) and torch.get_num_threads() == threads


@pytest.mark.slow
def test_resuming_a_finished_run_says_it_is_finished(trained_run, tiny_data, tmp_path, caplog):
    import shutil

    out = tmp_path / "finished"
    shutil.copytree(trained_run[0], out)
    with caplog.at_level(logging.INFO, logger="laps.engine.trainer"):
        summary = train(tiny_config(tiny_data, out), resume=True)
    messages = [r.getMessage() for r in caplog.records]
    assert any("has already finished its 2 epochs: nothing to train" in m for m in messages), messages
    assert not any("from epoch" in m for m in messages)
    assert summary["epochs"] == 2 and summary["best_epoch"] == trained_run[1]["best_epoch"]
