"""What an iterative method watches: a per-channel quantity of each pruned activation and its gradient.

Every activation-based criterion (Fisher, Taylor) needs the same machinery: a forward hook on each live
group's tap (the activation after BN+ReLU), a gradient hook on that activation, a running sum of a
per-channel quantity over the fine-tuning steps since the last prune, and a mean over them. A criterion
is then two small functions: what one step contributes from (activation, gradient), and how the
per-step mean becomes a score. The product is formed in fp32 whatever the autocast dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from prunestudy.methods.base import TrainHooks

if TYPE_CHECKING:
    import torch
    from torch import nn

    from prunestudy.arch import ArchSpec

PerStep = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]  # (activation, gradient) -> per channel
Finish = Callable[[dict[str, "torch.Tensor"]], dict[str, "torch.Tensor"]]  # per-step means -> scores


class ActivationCapture:
    """Accumulates ``per_step(a, dL/da)`` per channel of every live, tapped group while attached to ``model``."""

    def __init__(self, model: nn.Module, spec: ArchSpec, per_step: PerStep, finish: Finish | None = None):
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.per_step, self.finish = per_step, finish
        self._handles = [
            model.get_submodule(g.tap).register_forward_hook(self._forward_hook(g.name))
            for g in spec.groups()
            if g.tap and g.width
        ]
        self.hooks = TrainHooks(after_step=[self.step])

    def _forward_hook(self, name: str):
        def hook(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
            if not out.requires_grad:
                return
            act = out.detach()

            def grad_hook(grad: torch.Tensor) -> None:
                import torch

                dtype = torch.promote_types(act.dtype, torch.float32)  # bf16 under autocast -> fp32
                value = self.per_step(act.to(dtype), grad.to(dtype))
                self.sums[name] = self.sums[name] + value if name in self.sums else value

            out.register_hook(grad_hook)

        return hook

    def step(self) -> None:
        """Called once per optimisation step, so the mean is over minibatches."""
        self.steps += 1

    def means(self) -> dict[str, torch.Tensor]:
        if not self.steps:
            raise RuntimeError("no fine-tuning step was captured before asking for scores")
        return {name: s / self.steps for name, s in self.sums.items()}

    def scores(self) -> dict[str, torch.Tensor]:
        means = self.means()
        return self.finish(means) if self.finish else means

    def close(self) -> None:
        for h in self._handles:
            h.remove()
