"""``laps bench model``: speed, memory and cost of LAPS variants side by side, and of peers.

Contenders are measured in *groups*: the variants of one backbone at one clip length T (plus
the peer models, which join the group of :data:`PEER_REFERENCE`). Within a group every job is
interleaved round by round, so a load that comes and goes on a shared machine falls on every
contender alike. A row's ratio to a reference row is its value over the reference's value (the
medians the table prints); the JSON also keeps every round and the paired ratio (the median over
rounds of the per-round ratio).

Metrics (``--metrics``): ``latency`` (inference forward at B=1), ``throughput`` (clips/s at
``--batch``), ``train`` (forward + backward + SGD step at ``--batch``), ``memory`` (peak memory
of a training step, see :mod:`laps.bench.measure`), ``flops`` (fvcore GFLOPs per clip) and
always ``params`` and the structure of one inference forward at ``--batch`` (see
:mod:`laps.analysis.dispatch`): its copy ops, the bytes they write and the attention kernels used.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import torch

from laps.analysis.dispatch import OpCounter
from laps.analysis.flops import count_flops, count_params
from laps.bench.contenders import Contender, build, peer
from laps.bench.measure import autocast, inference_job, peak_train_memory, time_interleaved, train_job
from laps.bench.options import BenchOptions

PEER_REFERENCE = ("vit_base_patch16_224", "laps")  # the LAPS row peers are compared with
REFERENCES = ("base2d", "laps")  # every row gets its ratios to these rows of its group
#: metric -> (row field, True if larger is better); ratios are "x reference" of the field
RATIO_FIELDS = {
    "latency": ("latency_ms", False), "throughput": ("throughput_clips_s", True),
    "train": ("train_step_ms", False), "memory": ("peak_train_mem_mib", False),
    "flops": ("gflops", False), "params": ("params", False),
}


def groups(options: BenchOptions) -> list[list[Contender]]:
    """The contenders, one group per backbone and clip length; peers join the group of
    :data:`PEER_REFERENCE` (added, LAPS variant only, if it is not benchmarked anyway)."""
    result = [
        [Contender(backbone, variant, frames, options.img_size) for variant in options.variants]
        for backbone in options.backbones
        for frames in options.frames
    ]
    if options.peers:
        reference = Contender(PEER_REFERENCE[0], PEER_REFERENCE[1], 8, options.img_size)
        home = next((g for g in result if reference in g), None)
        if home is None:
            home = [reference]
            result.append(home)
        home.extend(peer(name, options.img_size) for name in options.peers)
    return result


def _prepare(contender: Contender, device: torch.device, compile_model: bool) -> torch.nn.Module:
    model = build(contender).to(device)
    return torch.compile(model) if compile_model else model


def measure_group(group: list[Contender], options: BenchOptions) -> list[dict]:
    """One row per contender with every requested metric, each timed job interleaved."""
    device = torch.device(options.device)
    models = {c: _prepare(c, device, options.compile) for c in group}
    rows = {c: {**c.to_dict(), "label": c.label, "params": count_params(models[c])} for c in group}
    if "flops" in options.metrics:
        for c in group:  # fvcore jit-traces an eager CPU model; the count is the same on any device
            rows[c]["gflops"] = count_flops(build(c), c.clips(1)) / 1e9
    for c in group:
        rows[c].update(forward_structure(models[c], c.clips(options.batch, device)))
    timed = {
        "latency": lambda c: inference_job(models[c], c.clips(1, device), options.cuda_graphs),
        "throughput": lambda c: inference_job(models[c], c.clips(options.batch, device), options.cuda_graphs),
        "train": lambda c: train_job(models[c], c.clips(options.batch, device)),
    }
    for metric, make_job in timed.items():
        if metric not in options.metrics:
            continue
        times = time_interleaved({c: make_job(c) for c in group}, options.repeats, device)
        for c in group:
            _record_times(rows[c], metric, times[c], options.batch)
    if "memory" in options.metrics:
        peaks = peak_train_memory(group, options.batch, device, options.compile)
        for c, peak in zip(group, peaks):
            rows[c]["peak_train_mem_mib"] = peak
    _add_ratios(list(rows.values()))
    return list(rows.values())


def forward_structure(model: torch.nn.Module, clips: torch.Tensor) -> dict:
    """Copy ops, the MiB they write and the attention backends of one inference forward."""
    model.eval()
    with torch.no_grad(), autocast(clips.device), OpCounter() as counter:  # inference_mode hides backends
        model(clips)
    return {"forward_copies": counter.copies, "forward_copy_mib": counter.copy_bytes / 2**20,
            "attention": sorted(set(counter.attention))}


def _record_times(row: dict, metric: str, seconds: list[float], batch: int) -> None:
    name, larger_is_better = RATIO_FIELDS[metric]
    median = statistics.median(seconds)
    row[name] = batch / median if larger_is_better else 1000 * median
    row[f"{metric}_rounds_s"] = seconds


def _add_ratios(rows: list[dict]) -> None:
    """``vs_<reference>``: each metric as its value over the reference row's value (what the table
    prints beside the values); ``paired_vs_<reference>``: each timed metric as the median over
    rounds of the ratio within a round."""
    for reference in REFERENCES:
        ref = next((r for r in rows if r["variant"] == reference), None)
        if ref is None:
            continue
        for row in rows:
            row[f"vs_{reference}"] = {metric: row[name] / ref[name]
                                      for metric, (name, _) in RATIO_FIELDS.items() if name in row}
            row[f"paired_vs_{reference}"] = {
                metric: statistics.median(b / a if larger_is_better else a / b
                                          for a, b in zip(row[f"{metric}_rounds_s"], ref[f"{metric}_rounds_s"]))
                for metric, (_, larger_is_better) in RATIO_FIELDS.items() if f"{metric}_rounds_s" in row
            }


def machine() -> dict:
    """CPU model, cores, torch version and, on CUDA, the GPU."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def run_model_bench(options: BenchOptions, command: str = "") -> dict:
    """Measure every group: ``{"benchmark", "date", "command", "machine", "options", "seconds", "rows"}``."""
    started = time.time()
    rows = [row for group in groups(options) for row in measure_group(group, options)]
    return {
        "benchmark": "model",
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "command": command,
        "machine": machine(),
        "options": vars(options).copy(),
        "seconds": time.time() - started,
        "rows": rows,
    }


def _cell(row: dict, metric: str, fmt: str) -> str:
    name, _ = RATIO_FIELDS[metric]
    if name not in row:
        return "-"
    value = format(row[name] / (1e6 if metric == "params" else 1), fmt)
    reference = "vs_base2d" if row["variant"] is not None and "vs_base2d" in row else "vs_laps"
    ratio = row.get(reference, {}).get(metric)
    return value if ratio is None else f"{value} ({ratio:.2f}x)"


def _structure_cell(row: dict) -> str:
    if "forward_copies" not in row:
        return "-"
    return f"{row['forward_copies']} ({row['forward_copy_mib']:.1f})"


def format_table(result: dict) -> str:
    """A Markdown table of a :func:`run_model_bench` result: values with their ratio to base2d
    in parentheses (peers, and groups without base2d: to the group's laps row)."""
    batch = result["options"]["batch"]
    header = ["model", "T", "params M", "GFLOPs", "latency ms (B=1)", f"clips/s (B={batch})",
              f"train step ms (B={batch})", f"peak train MiB (B={batch})", f"forward copies (MiB, B={batch})",
              "attention"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["rows"]:
        cells = [row["label"], str(row["frames"]), _cell(row, "params", ".1f"), _cell(row, "flops", ".1f"),
                 _cell(row, "latency", ".1f"), _cell(row, "throughput", ".2f"), _cell(row, "train", ".1f"),
                 _cell(row, "memory", ".0f"), _structure_cell(row), ", ".join(row.get("attention", ["-"]))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_frames_sweep(result: dict, path: str | Path) -> None:
    """Latency and peak training memory against T (log-log), one line per model and variant."""
    from matplotlib.ticker import NullLocator, ScalarFormatter

    from laps.analysis.plots import new_figure

    fig = new_figure((11, 4.5))
    axes = fig.subplots(1, 2)
    lines: dict[str, list[dict]] = {}
    for row in result["rows"]:
        lines.setdefault(row["label"], []).append(row)
    for ax, metric, title in ((axes[0], "latency", "inference latency (B=1), ms"),
                              (axes[1], "memory", "peak training-step memory, MiB")):
        name, _ = RATIO_FIELDS[metric]
        ax.set(xlabel="frames T", title=title)
        curves = {label: sorted((r["frames"], r[name]) for r in rows if name in r) for label, rows in lines.items()}
        curves = {label: points for label, points in curves.items() if len(points) > 1}
        if not curves:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
            continue
        for label, points in curves.items():
            ax.plot(*zip(*points), marker="o", label=label)
        ax.set(xscale="log", yscale="log")
        ax.set_xticks(sorted({r["frames"] for r in result["rows"]}))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(f"time and memory against clip length ({result['machine']['cpu']}, {result['options']['device']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
