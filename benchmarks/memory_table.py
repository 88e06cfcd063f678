"""What fits where: training memory per GPU of laps models under DDP, DDP + activation checkpointing
and FSDP + checkpointing, and the largest batch per GPU on 24, 40 and 80 GB.

- Model state per rank, exact from the parameter count: fp32 parameters (4 bytes), fp32 gradients
  (4) and AdamW's two fp32 moments (8) = 16 bytes a parameter; FSDP over W GPUs keeps 1/W of them.
  DDP adds its gradient buckets, a second fp32 copy of the gradients (4 bytes a parameter).
- Activations, measured: the bytes autograd saves for the backward pass (``saved_tensors_hooks``,
  each storage counted once, the parameters left out) of a batch of one clip and of two, with the
  model built from fake tensors (shapes without memory or compute). What grows from one clip to two
  is the cost of a clip; the rest is fixed: under bf16 autocast, the bfloat16 copies of the weights
  that the matmuls save (under FSDP the parameters are gathered in bfloat16 a block at a time
  instead, which the reserve covers). Checkpointing keeps each block's input and recomputes one
  block at a time in the backward pass: the saved bytes outside the blocks, plus every block's
  input, plus the largest block's saved bytes.
- The largest batch: ``(GPU - reserve - state - fixed) // per clip``, with a reserve for the CUDA
  context, FSDP's gathered blocks, the logits and the allocator's fragmentation.

Activations are counted in fp32 and under CPU bf16 autocast (``torch.autocast("cpu")``; CUDA's
autocast casts the same ops); the batches assume bf16. ``--check-real`` counts a small clip with
real CPU tensors too, to compare with the fake-tensor count, and the checkpointing count against
the model's own checkpointing (timm's, in its re-entrant form, whose saved block inputs the hooks
see).

    python benchmarks/memory_table.py --check-real   # writes benchmarks/results/memory_table.json

The results file keeps what a run did not measure: the rows of the models it left out and, without
``--check-real``, the previous real-tensor check (a file written for another clip size is replaced).
"""

from __future__ import annotations

import argparse
import json
import platform
from contextlib import contextmanager, nullcontext
from pathlib import Path

import timm.layers
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import laps
from laps.engine.sharding import transformer_blocks

#: the table's models (LAPS variant of each timm backbone)
MODELS = {
    "ViT-B/16": "vit_base_patch16_224",
    "ViT-L/16": "vit_large_patch16_224",
    "EVA02-L/14": "eva02_large_patch14_224",
    "ViT-g/14 (DINOv2)": "vit_giant_patch14_dinov2",
    "ViT-7B/16 (DINOv3)": "vit_7b_patch16_dinov3",
}
GPUS_GB = (24, 40, 80)
RESERVE_GB = 4.0
FSDP_GPUS = 8
STATE_BYTES_PER_PARAM = 16  # fp32 weights 4 + fp32 gradients 4 + AdamW exp_avg 4 + exp_avg_sq 4
DDP_BUCKET_BYTES_PER_PARAM = 4  # DistributedDataParallel's fp32 gradient buckets
GIB = 2 ** 30


class SavedBytes:
    """Counts the bytes of the tensors autograd saves, each storage once, the parameters' excluded;
    with ``blocks``, also what each block saves and the size of each block's input."""

    def __init__(self, model: torch.nn.Module, blocks: list[torch.nn.Module]) -> None:
        self.skip = {p.untyped_storage()._cdata for p in model.parameters()}
        self.seen: set[int] = set()
        self.total = 0
        self.block_saved: list[int] = []
        self.block_inputs = 0
        for block in blocks:
            block.register_forward_pre_hook(self._enter)
            block.register_forward_hook(self._leave)

    def _enter(self, module: torch.nn.Module, args: tuple) -> None:
        self.block_inputs += args[0].untyped_storage().nbytes()
        self.block_saved.append(-self.total)

    def _leave(self, module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        self.block_saved[-1] += self.total

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage._cdata not in self.skip and storage._cdata not in self.seen:
            self.seen.add(storage._cdata)
            self.total += storage.nbytes()
        return tensor

    @contextmanager
    def counting(self):
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda tensor: tensor):
            yield


def build(backbone: str, frames: int, img_size: int, fake: FakeTensorMode | None = None) -> torch.nn.Module:
    """The LAPS model; with ``fake``, built on the meta device and given fake CPU tensors of its
    parameters' and buffers' shapes (made one at a time: the model never takes its full memory)."""
    with torch.device("meta") if fake else nullcontext():
        model = laps.create_model(backbone, temporal="laps", num_frames=frames, num_classes=400, img_size=img_size)
    if fake:
        for module in model.modules():
            for name, param in module._parameters.items():
                if param is not None:
                    module._parameters[name] = torch.nn.Parameter(fake.from_tensor(torch.empty(param.shape)),
                                                                  param.requires_grad)
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    module._buffers[name] = fake.from_tensor(torch.zeros(buffer.shape, dtype=buffer.dtype))
    return model


def activations(backbone: str, frames: int, img_size: int, fake: bool = True, dtype: torch.dtype | None = None,
                batch: int = 1) -> dict[str, int]:
    """Bytes saved for a batch ``(batch, T, 3, H, W)``: without and with activation checkpointing,
    and by the block that saves the most."""
    mode = FakeTensorMode() if fake else None
    model = build(backbone, frames, img_size, mode).train()
    with mode or nullcontext():
        counter = SavedBytes(model, transformer_blocks(model))
        clip = torch.randn(batch, frames, 3, img_size, img_size)
        with counter.counting(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            model(clip)
    inside = sum(counter.block_saved)
    largest = max(counter.block_saved)
    return {"plain": counter.total, "checkpointed": counter.total - inside + counter.block_inputs + largest,
            "largest_block": largest, "blocks": len(counter.block_saved)}


def per_clip_and_fixed(backbone: str, frames: int, img_size: int, dtype: torch.dtype | None) -> dict[str, int]:
    """``{plain, checkpointed}`` bytes of one more clip, and ``fixed_*``: what a batch saves besides."""
    one, two = (activations(backbone, frames, img_size, dtype=dtype, batch=batch) for batch in (1, 2))
    kinds = ("plain", "checkpointed")
    return {**{k: two[k] - one[k] for k in kinds}, **{f"fixed_{k}": 2 * one[k] - two[k] for k in kinds}}


def largest_batch(gpu_gb: float, used: int, per_clip: int) -> int:
    return max(0, int((gpu_gb * GIB - RESERVE_GB * GIB - used) // per_clip))


def table(frames: int, img_size: int, models: dict[str, str]) -> list[dict]:
    """One row per model and strategy; the largest batches assume bf16 autocast (the recipes' ``runtime.amp``)."""
    rows = []
    for name, backbone in models.items():
        with torch.device("meta"):
            params = sum(p.numel() for p in build(backbone, frames, img_size).parameters())
        fp32, bf16 = (per_clip_and_fixed(backbone, frames, img_size, dtype) for dtype in (None, torch.bfloat16))
        state = STATE_BYTES_PER_PARAM * params
        for strategy, shards, kind in (("DDP", 1, "plain"), ("DDP + checkpointing", 1, "checkpointed"),
                                       (f"FSDP x{FSDP_GPUS} + checkpointing", FSDP_GPUS, "checkpointed")):
            fixed = DDP_BUCKET_BYTES_PER_PARAM * params + bf16[f"fixed_{kind}"] if shards == 1 else 0
            rows.append({"model": name, "backbone": backbone, "params": params, "strategy": strategy,
                         "state_bytes_per_rank": state // shards, "fixed_bytes_per_rank": fixed,
                         "activation_bytes_per_clip_fp32": fp32[kind], "activation_bytes_per_clip_bf16": bf16[kind],
                         **{f"batch_{gb}gb": largest_batch(gb, state // shards + fixed, bf16[kind]) for gb in GPUS_GB}})
    return rows


def print_table(rows: list[dict], frames: int, img_size: int) -> None:
    print(f"{frames} frames x {img_size} px, LAPS, AdamW; batches with bf16 autocast and a {RESERVE_GB:g} GB reserve\n")
    print("| model | params | strategy | params + grads + AdamW | DDP buckets + bf16 weights | activations a clip, "
          "fp32 | bf16 | " + " | ".join(f"batch {gb} GB" for gb in GPUS_GB) + " |")
    print("|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(GPUS_GB))
    for r in rows:
        print(f"| {r['model']} | {r['params'] / 1e6:.0f} M | {r['strategy']} | {r['state_bytes_per_rank'] / GIB:.2f} GiB | "
              f"{r['fixed_bytes_per_rank'] / GIB:.2f} GiB | {r['activation_bytes_per_clip_fp32'] / GIB:.2f} GiB | "
              f"{r['activation_bytes_per_clip_bf16'] / GIB:.2f} GiB | "
              + " | ".join(str(r[f"batch_{gb}gb"]) for gb in GPUS_GB) + " |")


def timm_checkpointing(backbone: str, frames: int, img_size: int) -> int:
    """What a clip saves with the model's own checkpointing (``set_grad_checkpointing``) in timm's
    re-entrant form, which saves each checkpointed block's input where the hooks see it, plus the
    largest block's saved bytes (its recomputation in the backward pass): the checkpointing count
    of :func:`activations`, measured another way."""
    mode = FakeTensorMode()
    model = build(backbone, frames, img_size, mode).train()
    model.set_grad_checkpointing(True)
    reentrant = timm.layers.use_reentrant_ckpt()
    timm.layers.set_reentrant_ckpt(True)
    try:
        with mode:
            counter = SavedBytes(model, [])
            with counter.counting():
                model(torch.randn(1, frames, 3, img_size, img_size))
    finally:
        timm.layers.set_reentrant_ckpt(reentrant)
    return counter.total + activations(backbone, frames, img_size)["largest_block"]


def check_real(backbone: str, frames: int, img_size: int) -> dict[str, object]:
    """The saved bytes of one clip counted with fake tensors and with real CPU tensors, fp32 and bf16,
    and the checkpointing count against timm's checkpointing."""
    counts = {f"{kind}_{precision}": activations(backbone, frames, img_size, fake=kind == "fake", dtype=dtype)["plain"]
              for kind in ("fake", "real") for precision, dtype in (("fp32", None), ("bf16", torch.bfloat16))}
    return {"backbone": backbone, "frames": frames, "img_size": img_size, **counts,
            "checkpointed": activations(backbone, frames, img_size)["checkpointed"],
            "timm_checkpointing": timm_checkpointing(backbone, frames, img_size)}


def merged(previous: dict | None, result: dict) -> dict:
    """``result`` with what ``previous`` (the results file's content) measured and it did not: the
    rows of other models, and sections it lacks (``real_check``); ``result`` alone where
    ``previous`` is of another clip (frames, image size)."""
    if not previous or (previous.get("frames"), previous.get("img_size")) != (result["frames"], result["img_size"]):
        return result
    fresh: dict[str, list[dict]] = {}
    for row in result["rows"]:
        fresh.setdefault(row["model"], []).append(row)
    rows: list[dict] = []
    for row in previous.get("rows", []):  # in the file's order, a measured model's rows replaced
        if row["model"] not in fresh:
            rows.append(row)
        elif not any(r["model"] == row["model"] for r in rows):
            rows += fresh[row["model"]]
    rows += [row for row in result["rows"] if row not in rows]
    return {**previous, **result, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), metavar="NAME",
                        help=f"rows of these models (default: all of {', '.join(MODELS)})")
    parser.add_argument("--check-real", action="store_true",
                        help="also count with real CPU tensors (ViT-B, 2 frames): equal to the fake-tensor count?")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "memory_table.json"))
    args = parser.parse_args()
    rows = table(args.frames, args.img_size, {name: MODELS[name] for name in args.models})
    print_table(rows, args.frames, args.img_size)
    result = {"frames": args.frames, "img_size": args.img_size, "reserve_gb": RESERVE_GB, "fsdp_gpus": FSDP_GPUS,
              "state_bytes_per_param": STATE_BYTES_PER_PARAM, "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "rows": rows}
    if args.check_real:
        result["real_check"] = check_real(MODELS["ViT-B/16"], 2, args.img_size)
        print("\nreal CPU tensors:", json.dumps(result["real_check"]))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(output.read_text()) if output.is_file() else None
    output.write_text(json.dumps(merged(previous, result), indent=1) + "\n")


if __name__ == "__main__":
    main()
