"""SGD with momentum and weight decay: PyTorch's update rule without ``torch.optim.Optimizer``.

Constructing any ``torch.optim`` optimizer imports ``torch._dynamo`` (about 2 s on a CPU machine),
which every short workflow job would pay for nothing. :class:`SGD` keeps the hyperparameters and one
momentum buffer per parameter, and its step calls ``torch.optim.sgd.sgd``, the function that
``torch.optim.SGD.step`` calls, with the same defaults: the arithmetic is PyTorch's, and a test holds
the two bit-identical. Buffers are keyed by parameter so that surgery can slice them by name.
Parameter groups carry their own weight decay, as torch's do.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.sgd import sgd


class SGD:
    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        *,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        params = list(params)
        if not params or not isinstance(params[0], dict):
            params = [{"params": params}]
        self.groups = [
            {
                "params": list(g["params"]),
                "weight_decay": g.get("weight_decay", weight_decay),
            }
            for g in params
        ]
        self.params = [p for g in self.groups for p in g["params"]]
        self.lr, self.momentum, self.nesterov = lr, momentum, nesterov
        self.buffers: dict[torch.Tensor, torch.Tensor] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for g in self.groups:
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            buffers = [self.buffers.get(p) for p in params]
            sgd(
                params,
                [p.grad for p in params],
                buffers,
                weight_decay=g["weight_decay"],
                momentum=self.momentum,
                lr=self.lr,
                dampening=0.0,
                nesterov=self.nesterov,
                maximize=False,
            )
            if self.momentum:
                self.buffers.update(zip(params, buffers, strict=True))

    def state_dict(self) -> dict:
        """Tensors and plain data only, in parameter order (for resume state)."""
        return {"lr": self.lr, "momentum_buffers": [self.buffers.get(p) for p in self.params]}

    def load_state_dict(self, state: dict) -> None:
        self.lr = state["lr"]
        pairs = zip(self.params, state["momentum_buffers"], strict=True)
        self.buffers = {p: b.to(p.device, copy=True) for p, b in pairs if b is not None}  # never alias the source
