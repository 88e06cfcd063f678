"""Checksums that travel inside checkpoint files, and safe loading of pickled checkpoints.

A file that is truncated, zero-length or has a flipped bit must never load as if it were fine.
The container formats catch some of that (a truncated zip or safetensors header does not parse),
but not a flipped bit inside a tensor. So every checkpoint laps writes carries
:func:`content_digest` of its content, computed when it is written and checked when it is read:
the SHA-256 of every tensor's name, dtype, shape and bytes, and of every plain value, in a
canonical order, together with the number of tensor bytes. Being computed over the content
rather than over the file, the record lives inside the file it describes, so a file and its
checksum are written (and renamed into place) as one.

Pickled files (``.pt``/``.pth``/``.bin``) are read with ``torch.load(weights_only=True)``, which
refuses any pickle that would build an object other than tensors and plain containers; a file
that asks for more is refused with :func:`load_error`'s message and its payload never runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from laps.atomic import atomic_path
from laps.errors import CheckpointError

#: key of the checksum record: in a training state's dict, and in a safetensors file's metadata
DIGEST_KEY = "laps_sha256"
#: key of the tensor byte count beside it
BYTES_KEY = "laps_tensor_bytes"


def _feed(h: "hashlib._Hash", value: Any) -> int:
    """Hash ``value`` (nested dicts / lists of tensors and plain values) into ``h``; -> tensor bytes."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{list(t.shape)}".encode())
        if t.numel():
            h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
        return t.numel() * t.element_size()
    if isinstance(value, Mapping):
        h.update(f"D{len(value)}".encode())
        total = 0
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            total += _feed(h, value[key])
        return total
    if isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        return sum(_feed(h, item) for item in value)
    h.update(f"V{value!r}".encode())
    return 0


def content_digest(value: Any) -> tuple[str, int]:
    """``(sha256 hex, tensor bytes)`` of nested dicts / lists / tuples of tensors and plain values.

    Equal for equal content whatever the dict order or the device the tensors are on; any changed
    byte, key, dtype, shape or value changes it."""
    h = hashlib.sha256()
    total = _feed(h, value)
    return h.hexdigest(), total


def damaged(path: str | Path, what: str, detail: str) -> CheckpointError:
    """The one error for a file whose content is not what was written."""
    return CheckpointError(
        f"{what} {path} is damaged: {detail}; the file was truncated or corrupted after it was written, "
        "use another copy (a run directory keeps the previous training state as well)"
    )


def verify(path: str | Path, what: str, content: Any, digest: str | None, num_bytes: int | str | None) -> None:
    """Raise :func:`damaged` unless ``content`` has the recorded ``digest`` and byte count (a file
    written by another tool, a plain safetensors file say, has neither, and is accepted)."""
    if digest is None:
        return
    actual, total = content_digest(content)
    if num_bytes is not None and str(total) != str(num_bytes):
        raise damaged(path, what, f"it holds {total} bytes of tensors, {num_bytes} were written")
    if actual != digest:
        raise damaged(path, what, "its content does not match the SHA-256 recorded when it was written")


def load_error(path: str | Path, exc: Exception, what: str) -> CheckpointError:
    """A one-line :class:`CheckpointError` for a failed ``torch.load(weights_only=True)`` of ``path``:
    a refusal for a pickle that would run code, else the reader's reason."""
    text = str(exc)
    wanted = re.search(r"Unsupported globals?: (?:GLOBAL )?([\w.]+)", text)
    if "weights_only" in text and wanted:
        return CheckpointError(
            f"refused to load {what} {path}: it holds pickled objects other than tensors and plain values "
            f"(it asks for {wanted.group(1)}), and unpickling them could run code. laps never does; re-save the "
            "weights as a plain state dict or a .safetensors file with a tool you trust"
        )
    reason = text.splitlines()[0] if text else type(exc).__name__
    return CheckpointError(f"cannot read {what} {path}: {reason}")


def _existing(path: str | Path, what: str) -> Path:
    """``path`` as a Path, if it is a file that is not empty."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    if path.stat().st_size == 0:
        raise damaged(path, what, "it is empty (0 bytes)")
    return path


def safe_torch_load(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU with :func:`load_error`'s messages."""
    path = _existing(path, what)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one clear message
        raise load_error(path, exc, what) from exc


def save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> None:
    """Atomically write ``tensors`` as a ``.safetensors`` file whose metadata (``metadata`` plus
    ``format``) carries the checksum of tensors and metadata."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {"format": "pt", **metadata}
    metadata[DIGEST_KEY], total = content_digest({"tensors": tensors, "metadata": metadata})
    metadata[BYTES_KEY] = str(total)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_safetensors(path: str | Path, what: str = "weights file") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a ``.safetensors`` file, its checksum checked (if it has one)."""
    path = _existing(path, what)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # noqa: BLE001 - not a safetensors file, truncated, ...
        raise CheckpointError(f"cannot read {what} {path}: {exc}; expected a .safetensors file") from exc
    digest, total = metadata.pop(DIGEST_KEY, None), metadata.pop(BYTES_KEY, None)
    verify(path, what, {"tensors": tensors, "metadata": metadata}, digest, total)
    return tensors, metadata
