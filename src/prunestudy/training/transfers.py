"""Count host-device copies and host syncs in a block of code, on any machine.

On a CPU-only machine the "device" is ``meta`` (shapes without data): any host tensor that reaches a
meta tensor is a copy a CUDA run would make, so the GPU path's transfers are checked where CI runs.
Used by the tests and by ``benchmarks/bench_gpu.py``.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class Transfers(TorchDispatchMode):
    """Inside ``with Transfers() as t:``, ``t.copies`` lists every op that mixed host and device tensors
    and ``t.syncs`` counts reads of a device value by the host (``.item()``, ``bool(tensor)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: list[str] = []
        self.syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        kinds = {t.device.type for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)}
        if "cpu" in kinds and len(kinds) > 1:
            self.copies.append(str(func))
        if func is torch.ops.aten._local_scalar_dense.default and kinds != {"cpu"}:
            self.syncs += 1
        return out
