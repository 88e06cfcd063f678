"""How ``torchrun`` processes hold the model: replicated (DDP) or sharded (FSDP2), and the full,
unsharded state of either.

``runtime.strategy=fsdp`` applies :func:`torch.distributed.fsdp.fully_shard` to every transformer
block of the backbone (:func:`transformer_blocks`) and then to the whole model: each process keeps
``1/W`` of every parameter, its gradient and its optimizer state, and gathers a block's parameters
only while the block runs. With ``runtime.amp=bf16`` the gathered parameters are cast to bfloat16
and gradients are reduced in float32; the sharded parameters stay float32.

A sharded model's parameters are ``DTensor`` shards. :func:`full_state` and
:func:`full_optimizer_state` gather them into the state a plain model would have (on the CPU of
rank 0), so weights files and training states look the same under every strategy;
:func:`load_full_state` and :func:`load_full_optimizer_state` hand every process its shards of
such a state. Every function here that gathers is a collective: every process calls it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from laps.errors import ConfigError
from laps.infer.distributed import is_main_process, world_size
from laps.models.video import load_weights_into

#: gather to full tensors on rank 0's CPU (the other ranks get an empty state)
GATHERED = StateDictOptions(full_state_dict=True, cpu_offload=True)
#: load from full tensors that every rank holds
FROM_FULL = StateDictOptions(full_state_dict=True)


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of ``model.backbone`` in order, those its family's ``block_pattern`` names."""
    pattern = model.family.block_pattern
    return [module for name, module in model.backbone.named_modules() if pattern.fullmatch(name + ".")]


def mixed_precision(amp: str) -> MixedPrecisionPolicy:
    """``runtime.amp`` as FSDP's policy: bf16 computes with bfloat16 copies of the parameters and
    reduces gradients in float32; ``none`` casts nothing."""
    if amp == "bf16":
        return MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    return MixedPrecisionPolicy()


def shard(model: nn.Module, amp: str, device: torch.device) -> None:
    """Shard ``model`` in place over all processes: every transformer block, then the rest (patch
    embedding, norms, head) as one group. Call it before building the optimizer."""
    mesh = init_device_mesh(device.type, (world_size(),))
    policy = mixed_precision(amp)
    for block in transformer_blocks(model):
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)


def is_sharded(model: nn.Module) -> bool:
    return isinstance(model, FSDPModule)


def training_module(model: nn.Module, distributed: bool) -> nn.Module:
    """What the training step calls: ``model`` wrapped in DDP under torchrun, else (one process, or
    already sharded) the model itself."""
    return DistributedDataParallel(model) if distributed and not is_sharded(model) else model


def local(tensor: torch.Tensor) -> torch.Tensor:
    """A plain tensor of ``tensor``'s full value (a gathered ``DTensor``, e.g. a total gradient norm)."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with full tensors on rank 0; an empty dict on the other ranks."""
    if is_sharded(model):
        return get_model_state_dict(model, options=GATHERED)
    return model.state_dict() if is_main_process() else {}


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state on rank 0 (empty elsewhere): ``optimizer.state_dict()`` for a plain
    model; for a sharded one, its full tensors keyed by parameter name."""
    if is_sharded(model):
        return get_optimizer_state_dict(model, optimizer, options=GATHERED)
    return optimizer.state_dict() if is_main_process() else {}


def load_full_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a :func:`full_state` (which every rank holds) into ``model``, sharded or not."""
    if is_sharded(model):
        set_model_state_dict(model, state, options=FROM_FULL)
    else:
        load_weights_into(model, state, source)


def load_full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load a :func:`full_optimizer_state` (which every rank holds) into ``optimizer``."""
    if is_sharded(model):
        set_optimizer_state_dict(model, optimizer, state, options=FROM_FULL)
    else:
        optimizer.load_state_dict(state)


def check_resumable(state: dict[str, Any], sharded: bool, source: str, strategy: str = "ddp") -> None:
    """Refuse a training state written by a sharded run to a replicated one (this run's
    ``strategy`` says which is missing: fsdp, or torchrun), and the other way round: their
    optimizer states are keyed differently (by parameter name, by position)."""
    if state.get("sharded", False) == sharded:
        return
    if sharded:
        raise ConfigError(f"{source} was written by a replicated (ddp or one process) run; resume it with the "
                          "runtime.strategy it started with")
    if strategy == "fsdp":  # asked for, but this process is not one of several
        raise ConfigError(f"{source} was written by a sharded run (runtime.strategy=fsdp under torchrun), and this "
                          "run is one process: resume it under torchrun, e.g. torchrun --nproc_per_node N -m laps "
                          "train ... --resume")
    raise ConfigError(f"{source} was written by a sharded (runtime.strategy=fsdp under torchrun) run; resume it "
                      "with the runtime.strategy it started with")
