"""torch.distributed set-up for ``torchrun`` launches (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    return rank() == 0


def init_distributed(device: torch.device) -> bool:
    """Join the process group described by torchrun's environment; False when not launched so."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def collective_device(tensor: torch.Tensor) -> torch.device:
    """Where a collective over ``tensor`` must run: NCCL reduces and gathers only CUDA tensors, so
    under it this rank's GPU; else the tensor's own device."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else tensor.device


def all_reduce_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over ranks (the tensor itself when alone), on the tensor's device."""
    if world_size() == 1:
        return tensor
    summed = tensor.to(collective_device(tensor))
    dist.all_reduce(summed)
    return summed.to(tensor.device)


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum plain numbers over ranks."""
    return all_reduce_tensor(torch.tensor(values, dtype=torch.float64)).tolist()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
