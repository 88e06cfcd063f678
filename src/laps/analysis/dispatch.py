"""What a piece of model code asks of the tensor library, op by op: the structural cost that a
benchmark's seconds hide (copies and the bytes they write, which attention kernel runs).

:class:`OpCounter` is a ``TorchDispatchMode``: it sees every aten op below autograd, forward and
backward, on any device, and counts without changing what runs.
"""

from __future__ import annotations

from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

#: aten ops whose whole job is to write existing values elsewhere (or constants): data movement
COPY_OPS = frozenset({
    "copy_", "clone", "_to_copy", "contiguous", "index", "index_select", "index_copy", "index_copy_",
    "index_put", "index_put_", "_index_put_impl_", "gather", "scatter", "scatter_", "stack", "cat",
    "slice_scatter", "select_scatter", "as_strided_scatter", "constant_pad_nd", "fill_", "zero_",
    "roll", "flip",
})
#: indexed writes: the argument holding the values they write (the rest of ``self`` is untouched)
VALUES_ARG = {"index_put": 2, "index_put_": 2, "_index_put_impl_": 2, "index_copy": 3, "index_copy_": 3}
#: the attention kernels behind ``F.scaled_dot_product_attention``, by backend
SDPA_BACKENDS = {
    "_scaled_dot_product_flash_attention": "flash",
    "_scaled_dot_product_flash_attention_for_cpu": "flash (cpu)",
    "_scaled_dot_product_cudnn_attention": "cudnn",
    "_scaled_dot_product_efficient_attention": "efficient",
    "_scaled_dot_product_fused_attention_overrideable": "fused (device)",
}


class OpCounter(TorchDispatchMode):
    """Counts every aten op run inside it; for :data:`COPY_OPS` also the bytes they write.

    Attributes after the ``with`` block: ``ops`` (name -> calls), ``copies`` (calls of copy ops),
    ``copy_bytes`` (bytes those calls wrote), ``attention`` (SDPA backends seen, in order, or
    ``"math"`` when attention ran as plain matrix products).
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.copies = 0
        self.copy_bytes = 0
        self.attention: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        self.ops[name] += 1
        if name in SDPA_BACKENDS and not name.endswith("backward"):
            self.attention.append(SDPA_BACKENDS[name])
        if name == "_safe_softmax":  # the softmax of SDPA's math fallback (matrix products)
            self.attention.append("math")
        if name in COPY_OPS:
            if name in VALUES_ARG:
                written = args[VALUES_ARG[name]]
            else:
                written = kwargs.get("out", args[0] if name.endswith("_") else out)
            self.copies += 1
            self.copy_bytes += sum(t.numel() * t.element_size() for t in tree_leaves(written) if isinstance(t, torch.Tensor))
        return out
