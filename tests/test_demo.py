"""`laps demo --quick`: the whole demo path in seconds, through the same engine as `laps train`."""

import json
import statistics
import time

import pytest
import torch

from laps.cli import main
from laps.data import SYNTHETIC_CLASSES
from laps.demo import DEMO_RECIPE, QUICK, ensure_dataset, inference_clips_per_s
from laps.engine.config import load_config


@pytest.mark.slow
def test_quick_demo_writes_report_table_and_run_directories(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| variant | val top-1 | params | GFLOPs/view | train clips/s | inference clips/s |" in printed
    demo = json.loads((out / "demo.json").read_text())
    rows = {row["variant"]: row for row in demo["rows"]}
    assert set(rows) == {"base2d", "laps"}
    for variant, row in rows.items():
        assert set(row) >= {"val_top1", "params", "gflops", "train_clips_per_s", "infer_clips_per_s"}
        # the training rate is the median of the epochs' rates, and at least the clips trained
        # over the whole run's time (which also holds evaluation and checkpoints)
        epochs = [json.loads(line) for line in (out / variant / "metrics.jsonl").read_text().splitlines()]
        assert row["train_clips_per_s"] == pytest.approx(statistics.median(e["train_clips_per_s"] for e in epochs))
        batch = QUICK["optim.batch_size"]  # training drops the last, incomplete batch
        train_clips = len((out / "data" / "train.txt").read_text().splitlines()) // batch * batch * len(epochs)
        assert row["train_clips_per_s"] >= train_clips / row["train_time_s"]
        assert f"{row['train_clips_per_s']:.1f} | {row['infer_clips_per_s']:.1f} |" in printed
    assert rows["base2d"]["params"] == rows["laps"]["params"]
    assert rows["laps"]["gflops"] > rows["base2d"]["gflops"]
    report = (out / "report.md").read_text()
    for variant, row in rows.items():  # ordinary run directories plus the demo's eval.json
        for name in ("summary.json", "metrics.jsonl", "model.safetensors", "config.json", "eval.json", "confusion.png"):
            assert (out / variant / name).is_file(), (variant, name)
        summary = json.loads((out / variant / "summary.json").read_text())
        assert row["val_top1"] == json.loads((out / variant / "eval.json").read_text())["top1"]
        assert (row["params"], row["gflops"]) == (summary["params"], summary["gflops_per_view"])
        # the report's table and reading show the measured numbers
        assert f"| {variant} | {100 * row['val_top1']:.1f}% | {row['params']:,} | {row['gflops']:.4f} |" in report
        assert f"reached {100 * row['val_top1']:.1f}%" in report
    assert (out / "curves.png").is_file()
    pair = [p["path"].split("/")[-2] for p in demo["predictions"]]
    assert len(pair) == 2 and SYNTHETIC_CLASSES.index(pair[1]) == SYNTHETIC_CLASSES.index(pair[0]) + 1
    assert all("top" in p for p in demo["predictions"])
    # a second run reuses the generated dataset
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert "dataset: reusing" in capsys.readouterr().out

    # a dataset stamped with other settings (e.g. an older generator) is replaced whole
    stamp = out / "data" / "synthetic.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "classes": ["moving_left"]}))
    (out / "data" / "videos" / "moving_left").mkdir()
    ensure_dataset(out / "data", videos_per_class=4, seed=0)
    assert "dataset: wrote 40 videos" in capsys.readouterr().out
    assert not (out / "data" / "videos" / "moving_left").exists()
    assert sorted(p.name for p in (out / "data" / "videos").iterdir()) == sorted(SYNTHETIC_CLASSES)


def test_inference_rate_is_the_batch_over_the_median_forward_time():
    calls = []

    class Sleeper(torch.nn.Module):
        def forward(self, clips):
            calls.append(clips.shape)
            time.sleep(0.02)
            return clips.mean((1, 2, 3, 4))

    config = load_config(DEMO_RECIPE, {"model.num_frames": 2, "model.img_size": 8})
    began = time.perf_counter()
    rate = inference_clips_per_s(Sleeper(), config, batch=4, repeats=3)
    elapsed = time.perf_counter() - began
    assert calls == [(4, 2, 3, 8, 8)] * 4  # a warm-up, then three timed forwards of the batch
    assert 2 * 4 / elapsed <= rate <= 4 / 0.02  # the median forward: at least 20 ms, at most half the time
