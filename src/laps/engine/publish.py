"""Share a training run: its best model on the Hugging Face Hub, with a model card that gives the
run's cost, results and training config (from ``summary.json`` and ``config.yaml``)."""

from __future__ import annotations

import json
from pathlib import Path

from laps.engine import checkpoint as ckpt
from laps.engine.run_dir import SUMMARY
from laps.models.loading import from_pretrained
from laps.models.sharing import model_card, push_to_hub

#: summary.json keys shown in the card's results table
RESULT_KEYS = ("best_val_top1", "final_val_top1", "best_epoch", "epochs", "wall_time_s")


def run_sections(run_dir: str | Path) -> str:
    """Markdown sections of a run for its model card: cost and results (``summary.json``), and the
    training config (``config.yaml``); empty for what the run directory lacks."""
    run = Path(run_dir)
    summary = json.loads((run / SUMMARY).read_text()) if (run / SUMMARY).is_file() else {}
    lines = []
    if summary:
        lines += ["## Training run", "", "| metric | value |", "|---|---|",
                  f"| parameters | {summary.get('params', 0) / 1e6:.2f}M |",
                  f"| GFLOPs per view | {summary.get('gflops_per_view', 0):.3f} |"]
        for key in RESULT_KEYS:
            if summary.get(key) is not None:
                value = summary[key]
                lines.append(f"| {key} | {100 * value:.2f}% |" if key.endswith("top1") else f"| {key} | {value} |")
        lines.append("")
    if (run / ckpt.CONFIG).is_file():
        lines += ["## Training config", "", "```yaml", (run / ckpt.CONFIG).read_text().rstrip(), "```"]
    return "\n".join(lines)


def push_run(run_dir: str | Path, repo_id: str, private: bool = False, token: str | None = None,
             commit_message: str = "Upload laps video model") -> str:
    """Upload the best model of the run in ``run_dir`` to the Hub repository ``repo_id`` with a model
    card that includes :func:`run_sections` -> the URL of the commit."""
    model = from_pretrained(run_dir)
    card = model_card(model.video_cfg, repo_id, run_sections(run_dir))
    return push_to_hub(model, repo_id, card, private=private, token=token, commit_message=commit_message)
