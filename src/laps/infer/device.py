"""The one device resolver of every command (``--device``) and of training (``runtime.device``)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from laps.errors import ConfigError

if TYPE_CHECKING:
    import torch

#: the default of every ``--device`` and of ``runtime.device``
DEFAULT_DEVICE = "auto"
#: the help of every ``--device``: its vocabulary
DEVICE_HELP = ("auto (default): cuda when torch sees a GPU (under torchrun this process's GPU, LOCAL_RANK), "
               "else cpu; or cpu, cuda, cuda:N")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(name: str) -> str:
    """``name`` if it is in the ``--device`` vocabulary (:data:`DEVICE_HELP`), else a one-line :class:`ConfigError`."""
    if not _DEVICE.fullmatch(name):
        raise ConfigError(f"device {name!r} is not one of: {DEVICE_HELP}")
    return name


def resolve_device(name: str = DEFAULT_DEVICE) -> torch.device:
    """``name`` as a torch device: ``auto`` is cuda when torch sees a GPU (``cuda:LOCAL_RANK`` under
    torchrun), else cpu; a cuda device (``cuda``, ``cuda:N``) where torch sees none is refused in one line."""
    import torch

    check_device(name)
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        local_rank = os.environ.get("LOCAL_RANK")
        return torch.device("cuda") if local_rank is None else torch.device("cuda", int(local_rank))
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name} was asked for but torch sees no CUDA device; use cpu (or auto)")
    return torch.device(name)
