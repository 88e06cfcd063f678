"""``laps bench``: the quick model benchmark writes every field; peers, plot and errors."""

import json
import sys
import time

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from laps.bench import contenders
from laps.bench.model import RATIO_FIELDS, groups, plot_frames_sweep
from laps.bench.options import DEFAULT_VARIANTS, BenchOptions
from laps.cli import main
from laps.errors import ConfigError

ROW_FIELDS = ("model", "variant", "frames", "img_size", "label", "params", "gflops", "latency_ms",
              "throughput_clips_s", "train_step_ms", "peak_train_mem_mib", "vs_base2d", "vs_laps",
              "forward_copies", "forward_copy_mib", "attention")


@pytest.mark.slow
def test_quick_model_bench_writes_json_with_every_field(tmp_path):
    path = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    assert main(["bench", "model", "--quick", "--threads", "1", "--output", str(path)]) == 0
    assert torch.get_num_threads() == threads
    result = json.loads(path.read_text())
    assert {"benchmark", "date", "command", "machine", "options", "seconds", "rows"} <= set(result)
    assert result["options"]["img_size"] == 32 and result["machine"]["threads"] == 1
    assert [row["variant"] for row in result["rows"]] == list(DEFAULT_VARIANTS)
    for row in result["rows"]:
        assert all(field in row for field in ROW_FIELDS), set(ROW_FIELDS) - set(row)
        assert row["model"] == "vit_tiny_patch16_224" and row["frames"] == 4
        assert len(row["latency_rounds_s"]) == 2
        assert set(row["vs_base2d"]) == set(RATIO_FIELDS)
        assert all(value > 0 for value in row["vs_base2d"].values())
        assert row["peak_train_mem_mib"] > 0 and row["params"] == result["rows"][0]["params"]
    by_variant = {row["variant"]: row for row in result["rows"]}
    base, laps_row = by_variant["base2d"], by_variant["laps"]
    # ratios: the row's value over base2d's; paired: the median of the per-round ratios
    assert laps_row["vs_base2d"]["latency"] == pytest.approx(laps_row["latency_ms"] / base["latency_ms"])
    per_round = sorted(a / b for a, b in zip(laps_row["latency_rounds_s"], base["latency_rounds_s"]))
    assert laps_row["paired_vs_base2d"]["latency"] == pytest.approx(sum(per_round) / 2)  # median of two rounds
    assert laps_row["vs_base2d"]["flops"] == pytest.approx(laps_row["gflops"] / base["gflops"]) and laps_row["gflops"] > base["gflops"]
    assert laps_row["vs_base2d"]["memory"] == pytest.approx(laps_row["peak_train_mem_mib"] / base["peak_train_mem_mib"])
    assert by_variant["base2d"]["attention"] == ["flash (cpu)"]
    # laps writes its attention output back once more than base2d, in more (slice) copies
    assert by_variant["laps"]["forward_copy_mib"] > by_variant["base2d"]["forward_copy_mib"]
    assert by_variant["laps"]["forward_copies"] > by_variant["la"]["forward_copies"] > by_variant["base2d"]["forward_copies"]


class Flat(torch.nn.Module):
    """A stand-in model: clips (B, T, 3, H, W) -> (B, 1)."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(1, 1)

    def forward(self, clips):
        return self.head(clips.mean((1, 2, 3, 4))[:, None])


def test_every_printed_ratio_is_its_rows_value_over_base2ds(monkeypatch):
    """A fake timer whose rounds disagree (a noisy base2d round): the table's ratios must still be
    the quotients of the values it prints beside them."""
    from laps.bench import model as bench

    rounds = {"base2d": [0.030, 0.6348], "ps": [0.048, 0.0532], "laps": [0.040, 0.0700]}  # seconds per call
    monkeypatch.setattr(bench, "build", lambda contender: Flat())
    monkeypatch.setattr(bench, "time_interleaved",
                        lambda jobs, repeats, device: {c: list(rounds[c.variant]) for c in jobs})
    options = BenchOptions.quick(variants=list(rounds), metrics=["latency", "throughput"])
    result = {"rows": bench.measure_group(bench.groups(options)[0], options), "options": vars(options)}
    by_variant = {row["variant"]: row for row in result["rows"]}
    assert by_variant["base2d"]["latency_ms"] == pytest.approx(1000 * (0.030 + 0.6348) / 2)  # 332.4 ms
    assert by_variant["ps"]["latency_ms"] == pytest.approx(50.6)
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in bench.format_table(result).splitlines()[2:]]
    for cells in table:
        for column in (4, 5):  # latency ms (B=1), clips/s
            value, ratio = cells[column].split(" (")
            base_value = float(table[0][column].split(" (")[0])
            assert float(ratio.rstrip("x)")) == pytest.approx(float(value) / base_value, abs=0.006)
    assert table[1][4] == "50.6 (0.15x)"  # ps: 50.6 ms against base2d's 332.4 ms


def test_the_help_names_the_units_the_table_prints(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for unit in ("latency in ms", "clips/s", "train step in ms", "MiB", "GFLOPs"):
        assert unit in text, unit
    assert "seconds" not in text


def test_cuda_graphs_need_a_cuda_device(capsys):
    assert main(["bench", "model", "--quick", "--device", "cpu", "--cuda-graphs"]) == 2
    assert "--cuda-graphs needs --device cuda" in capsys.readouterr().err


def test_peers_join_the_group_of_laps_vit_base():
    with_base = groups(BenchOptions(backbones=["vit_base_patch16_224"], variants=["base2d", "laps"],
                                    peers=["timesformer", "videomae"]))
    assert [(c.model, c.variant, c.frames) for c in with_base[0]] == [
        ("vit_base_patch16_224", "base2d", 8), ("vit_base_patch16_224", "laps", 8),
        ("timesformer", None, 8), ("videomae", None, 16)]
    without = groups(BenchOptions(backbones=["vit_tiny_patch16_224"], variants=["laps"], peers=["timesformer"]))
    assert [c.label for c in without[1]] == ["vit_base_patch16_224 laps", "TimeSformer-base (HF)"]


def test_peer_builds_from_transformers_config():
    pytest.importorskip("transformers")
    timesformer = contenders.peer("timesformer", img_size=32)
    model = contenders.build(timesformer).eval()
    with torch.no_grad():
        assert model(timesformer.clips(1)).shape == (1, contenders.NUM_CLASSES)


def test_missing_transformers_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match="pip install transformers"):
        contenders.build(contenders.peer("videomae", img_size=32))


def test_frames_sweep_plot_is_written(tmp_path):
    rows = [{"label": f"vit_small {variant}", "frames": frames, "latency_ms": frames * scale,
             "peak_train_mem_mib": frames * scale} for variant, scale in (("laps", 1.0), ("joint", 3.0))
            for frames in (8, 16, 32)]
    result = {"rows": rows, "machine": {"cpu": "test"}, "options": {"device": "cpu"}}
    plot_frames_sweep(result, tmp_path / "frames.png")
    image = imread(tmp_path / "frames.png")[..., :3]  # (H, W, RGB) floats in [0, 1]
    assert image.shape == (450, 1100, 3)  # 11 x 4.5 inches at 100 dpi
    left, right = image[:, :550], image[:, 550:]
    for colour in ("C0", "C1"):  # the two lines (laps, joint), drawn in both panels
        rgb = np.array(to_rgb(colour))
        for panel in (left, right):
            assert (np.abs(panel - rgb).max(-1) < 0.05).sum() > 100, colour


def test_a_command_without_the_training_toolkit_names_the_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    for module in [name for name in sys.modules if name.startswith(("laps.data.", "laps.bench.data"))]:
        monkeypatch.delitem(sys.modules, module)
    assert main(["bench", "data", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "needs the training toolkit (no module 'av')" in err and "pip install 'laps[train]'" in err


@pytest.mark.slow
def test_quick_data_bench_has_the_prepared_row_and_the_workers_sweep(tmp_path):
    from laps.bench.data import format_table, run_data_bench

    result = run_data_bench(quick=True, json_path=tmp_path / "data.json", workers=[1, 2])
    assert [(row["keyframe_interval"], row["prepared"]) for row in result["rows"]] == [
        (250, False), (30, False), (16, "resized"), (16, "resized --compact")]
    for row in result["rows"]:  # the speed-up is the quotient of the two rates it reports
        assert row["speedup"] == pytest.approx(row["laps_clips_per_s"] / row["naive_clips_per_s"])
    assert [entry["workers"] for entry in result["loader_workers"]] == [1, 2]
    assert "16 (resized)" in format_table(result) and json.loads((tmp_path / "data.json").read_text())["rows"]


def test_clips_per_second_counts_every_timed_clip_against_both_clocks():
    from laps.bench.data import clips_per_second

    calls = []
    began = time.perf_counter()
    cpu, wall = clips_per_second(lambda: calls.append(time.sleep(0.02)), 5)
    elapsed = time.perf_counter() - began
    assert len(calls) == 6  # one warm-up, then the five timed clips
    assert 5 / elapsed <= wall <= 1 / 0.02  # five clips within the elapsed time, each at least 20 ms
    assert cpu > 5 * wall  # sleeping takes wall time, not CPU time: the two clocks are not swapped


def test_a_variant_added_in_one_place_is_built_and_benched(tmp_path, monkeypatch):
    """A new attention kind in ``ATTENTION_KINDS`` and a variant of it in ``VARIANTS``: the model
    builds with its schedule, and ``laps bench --variants`` takes the name and measures it."""
    import laps
    from laps.models.temporal import ATTENTION_KINDS
    from laps.variants import VARIANTS

    with pytest.raises(SystemExit, match="2"):  # not a variant yet
        main(["bench", "model", "--quick", "--variants", "first_leap_ps"])
    monkeypatch.setitem(ATTENTION_KINDS, "first_leap", lambda num_frames, num_blocks, levels: [1] * num_blocks)
    monkeypatch.setitem(VARIANTS, "first_leap_ps", ("first_leap", "periodic"))
    model = laps.create_model("vit_tiny_patch16_224", temporal="first_leap_ps", num_frames=4, img_size=32, depth=2)
    assert model.block_levels == [1, 1] and all(m.fold > 0 for m in model.attention_modules)
    path = tmp_path / "bench.json"
    assert main(["bench", "model", "--quick", "--variants", "base2d,first_leap_ps", "--metrics", "latency",
                 "--threads", "1", "--output", str(path)]) == 0
    rows = json.loads(path.read_text())["rows"]
    assert [row["variant"] for row in rows] == ["base2d", "first_leap_ps"] and rows[1]["latency_ms"] > 0


def test_the_memory_table_keeps_what_a_run_did_not_measure(tmp_path, monkeypatch):
    import importlib.util
    import json
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "memory_table.py"
    spec = importlib.util.spec_from_file_location("memory_table", script)
    memory_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory_table)
    tracked = json.loads((script.parent / "results" / "memory_table.json").read_text())
    output = tmp_path / "memory_table.json"
    output.write_text(json.dumps(tracked))
    fresh = [{**row, "params": -1} for row in tracked["rows"] if row["model"] == "ViT-B/16"]
    monkeypatch.setattr(memory_table, "table", lambda frames, img_size, models: fresh)  # no measuring
    monkeypatch.setattr(sys, "argv", ["memory_table.py", "--models", "ViT-B/16", "--output", str(output)])
    memory_table.main()
    written = json.loads(output.read_text())
    assert written["real_check"] == tracked["real_check"]  # not measured this time: kept
    assert [r["model"] for r in written["rows"]] == [r["model"] for r in tracked["rows"]]  # the other models kept
    assert [r["params"] for r in written["rows"] if r["model"] == "ViT-B/16"] == [-1] * 3
