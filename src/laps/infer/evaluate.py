"""Multi-view evaluation: softmax averaged over the views of each video (:func:`laps.infer.predict.predict_views`),
gathered over ranks, then accuracy metrics and the eval outputs (eval.json, confusion matrix, predictions)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from laps.atomic import atomic_path, write_text_atomic
from laps.infer.distributed import collective_device, is_main_process
from laps.infer.predict import predict_views
from laps.infer.progress import progress as progress_bar


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every rank (rank order); identity without distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    world = dist.get_world_size()
    device = collective_device(tensor)
    sizes = [torch.zeros((), dtype=torch.long, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor(tensor.shape[0], device=device))
    padded = torch.zeros((int(max(sizes)), *tensor.shape[1:]), dtype=tensor.dtype, device=device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(n)] for p, n in zip(parts, sizes)]).to(tensor.device)


def evaluate(model: nn.Module, loader, num_classes: int, amp: str = "none", progress: bool = True,
             desc: str = "eval", should_stop: Callable[[], bool] | None = None,
             iterate: Callable[[Any], Iterable] = iter) -> dict[str, Any] | None:
    """Run ``model`` over a test-mode loader of ``(views (B,V,T,C,H,W), labels, indices)``.

    Returns metrics with fractions in [0, 1] plus ``probs (num_videos, K)``, ``labels`` and
    ``indices`` (dataset order), gathered over all ranks; duplicates from padded distributed
    samplers are dropped. ``should_stop`` is asked before every batch (on every rank); when it
    says so, the evaluation ends early and returns None. ``iterate(loader)`` gives its batches
    (the trainer's ends the wait for one on a stop signal).
    """
    was_training = model.training
    model.eval()
    probs, labels, indices = [], [], []
    for views, label, index in progress_bar(iterate(loader), desc, len(loader), enabled=progress and is_main_process()):
        if should_stop is not None and should_stop():
            model.train(was_training)
            return None
        probs.append(predict_views(model, views, loader.dataset.normalize, amp).cpu())
        labels.append(label)
        indices.append(index)
    model.train(was_training)
    probs_t = _gather(torch.cat(probs)) if probs else torch.zeros(0, num_classes)
    labels_t = _gather(torch.cat(labels)) if labels else torch.zeros(0, dtype=torch.long)
    indices_t = _gather(torch.cat(indices)) if indices else torch.zeros(0, dtype=torch.long)
    order = np.unique(indices_t.numpy(), return_index=True)[1]
    probs_t, labels_t, indices_t = probs_t[order], labels_t[order], indices_t[order]
    return {**accuracy_metrics(probs_t, labels_t, num_classes), "probs": probs_t, "labels": labels_t, "indices": indices_t}


def accuracy_metrics(probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, Any]:
    """top1, top5, mean class accuracy, per-class accuracy and confusion matrix (rows = truth)."""
    num = labels.shape[0]
    if num == 0:
        return {"top1": 0.0, "top5": 0.0, "mean_class_acc": 0.0, "per_class_acc": [0.0] * num_classes,
                "confusion": np.zeros((num_classes, num_classes), dtype=int), "num_videos": 0, "loss": 0.0}
    top = probs.topk(min(5, num_classes), dim=-1).indices
    pred = top[:, 0]
    confusion = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(confusion, (labels.numpy(), pred.numpy()), 1)
    support = confusion.sum(1)
    per_class = np.divide(np.diag(confusion), support, out=np.zeros(num_classes), where=support > 0)
    return {
        "top1": float((pred == labels).float().mean()),
        "top5": float((top == labels[:, None]).any(1).float().mean()),
        "mean_class_acc": float(per_class[support > 0].mean()),
        "per_class_acc": per_class.tolist(),
        "confusion": confusion,
        "num_videos": int(num),
        "loss": float(torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), labels)),
    }


def write_eval_outputs(result: dict[str, Any], out_dir: str | Path, classes: list[str], views: str,
                       paths: list[str]) -> dict[str, Any]:
    """Write confusion.csv/png, predictions.csv, then eval.json, each atomically; return eval.json's dict."""
    from laps.analysis.plots import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        "top1": result["top1"], "top5": result["top5"], "mean_class_acc": result["mean_class_acc"],
        "num_videos": result["num_videos"], "views": views,
        "per_class_acc": dict(zip(classes, result["per_class_acc"])),
    }
    confusion = result["confusion"]
    with atomic_path(out / "confusion.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true\\pred", *classes])
        writer.writerows([name, *row] for name, row in zip(classes, confusion.tolist()))
    with atomic_path(out / "confusion.png") as tmp:
        plot_confusion(confusion, classes, tmp)
    with atomic_path(out / "predictions.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "pred", "prob"])
        for index, label, prob in zip(result["indices"].tolist(), result["labels"].tolist(), result["probs"]):
            pred = int(prob.argmax())
            writer.writerow([paths[index], classes[label], classes[pred], f"{float(prob[pred]):.4f}"])
    write_text_atomic(out / "eval.json", json.dumps(summary, indent=2))  # last: its presence means a complete evaluation
    return summary
