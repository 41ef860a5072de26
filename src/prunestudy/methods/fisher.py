"""Fisher pruning (Theis et al. 2018; Crowley et al.): an iterative method, one channel per decision.

For the masked activation ``a`` of a group's tap (after BN+ReLU) and ``g = dL/da`` with L the
*batch-mean* loss, as in Crowley et al.'s code:

    Delta_c = 1/2 * 1/N * sum_n ( sum_{h,w} a[n,c,h,w] * g[n,c,h,w] )^2

Deltas are summed over the fine-tuning minibatches since the last prune and divided by their count.
Because g carries 1/N, Delta is the per-example form times 1/N^2 only when examples do not interact,
i.e. with BN in eval mode; in train mode BN couples the examples of a batch, and this is the batch
quantity that the pytorch-prunes hook computes. The product is formed in fp32
whatever the autocast dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar

from prunestudy.arch import ArchSpec
from prunestudy.io.options import Range, Settings
from prunestudy.methods.base import Method, TrainHooks
from prunestudy.training.recipe import Recipe

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class FisherParams(Settings):
    """The method's config: the prune-and-tune loop (Crowley et al.'s recipe, docs/deviations.md), each
    setting with the bounds outside which a run would be degenerate."""

    every: Annotated[int, Range(min=1)] = 100  # fine-tuning minibatches between two prunes
    max_prunes: Annotated[int, Range(min=1)] = 1300
    param_floor: Annotated[float, Range(min=0, lt=1)] = 0.0
    chunk: Annotated[int, Range(min=1)] = 100  # prunes per job
    lr: Annotated[float, Range(gt=0)] = 8e-4
    momentum: Annotated[float, Range(min=0, max=1)] = 0.9
    weight_decay: Annotated[float, Range(min=0)] = 5e-4
    batch_size: Annotated[int, Range(min=2)] = 128  # BN needs two examples
    flops_weight: Annotated[float, Range(min=0)] = 0.0

    @property
    def recipe(self) -> Recipe:
        return Recipe(
            epochs=1,
            batch_size=self.batch_size,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            schedule="constant",
        )

    def chunk_range(self, c: int) -> tuple[int, int]:
        return c * self.chunk, min((c + 1) * self.chunk, self.max_prunes)

    @property
    def chunks(self) -> int:
        return math.ceil(self.max_prunes / self.chunk)


class Fisher(Method):
    """Watches fine-tuning through :class:`FisherCapture` (its hooks: one count per step) and selects
    the globally least salient channel."""

    name: ClassVar[str] = "fisher"
    kind: ClassVar[str] = "iterative"
    params: ClassVar[type] = FisherParams

    @staticmethod
    def watch(model: nn.Module, spec: ArchSpec) -> FisherCapture:
        return FisherCapture(model, spec)

    @staticmethod
    def select(
        capture: FisherCapture, spec: ArchSpec, params: FisherParams, base_flops: int
    ) -> tuple[dict[str, list[int]], float]:
        """The removal (group name -> channels) and the chosen channel's score."""
        group, channel, score = choose_channel(capture.saliency(), spec, params.flops_weight, base_flops)
        return {spec.groups()[group].name: [channel]}, score


class FisherCapture:
    """Accumulates Delta per channel of every live, tapped group while attached to ``model``."""

    def __init__(self, model: nn.Module, spec: ArchSpec):
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
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
                per_example = (act.to(dtype) * grad.to(dtype)).sum((2, 3))  # N x C
                delta = 0.5 * per_example.pow(2).mean(0)
                self.sums[name] = self.sums[name] + delta if name in self.sums else delta

            out.register_hook(grad_hook)

        return hook

    def step(self) -> None:
        """Called once per optimisation step, so the mean is over minibatches."""
        self.steps += 1

    def saliency(self) -> dict[str, torch.Tensor]:
        if not self.steps:
            raise RuntimeError("no fine-tuning step was captured before asking for saliency")
        return {name: s / self.steps for name, s in self.sums.items()}

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def choose_channel(
    saliency: dict[str, torch.Tensor], spec: ArchSpec, flops_weight: float = 0.0, base_flops: int | None = None
) -> tuple[int, int, float]:
    """Global argmin over all live channels: (group index, channel, score). One channel per decision.

    Groups are visited in the spec's order and a tie goes to the first. With ``flops_weight`` beta > 0
    the score is ``Delta_c - beta * dFLOPs_g / FLOPs_base``, where dFLOPs_g is what removing one channel
    of group g saves, so channels that are cheap to keep are favoured less. beta = 0 (the default) is
    the reference behaviour.
    """
    import torch

    best: tuple[float, int, int] | None = None
    for i, g in enumerate(spec.groups()):
        if not g.width or g.name not in saliency:
            continue
        score = saliency[g.name].detach().double().cpu()
        if flops_weight:
            fewer = spec.kept({g.name: range(g.width - 1)})
            saved = (spec.flops() - fewer.flops()) / (base_flops or spec.flops())
            score = score - flops_weight * saved
        c = int(torch.argmin(score))
        if best is None or float(score[c]) < best[0]:
            best = (float(score[c]), i, c)
    if best is None:
        raise ValueError("no prunable channel left")
    return best[1], best[2], best[0]
