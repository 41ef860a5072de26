"""Fisher saliency of every prunable channel, captured with forward and tensor hooks.

For the masked activation ``a`` after BN2+ReLU (the block's :class:`~prunestudy.models.Tap`) and
``g = dL/da`` with L the *batch-mean* loss, as in Crowley et al.'s code:

    Delta_c = 1/2 * 1/N * sum_n ( sum_{h,w} a[n,c,h,w] * g[n,c,h,w] )^2

Because g carries 1/N, Delta equals the per-example form times 1/N^2: same argmin, batch-size
dependent magnitude. Deltas are summed over the fine-tuning minibatches since the last prune and
divided by their count.
"""

from __future__ import annotations

import torch
from torch import nn

from prunestudy.spec import ArchSpec


class FisherCapture:
    """Accumulates Delta per channel of every live block while attached to ``model``."""

    def __init__(self, model: nn.Module):
        self.sums: dict[int, torch.Tensor] = {}
        self.steps = 0
        self._handles = [
            block.tap.register_forward_hook(self._forward_hook(i))
            for i, block in enumerate(model.blocks)
            if block.has_branch
        ]

    def _forward_hook(self, index: int):
        def hook(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
            if not out.requires_grad:
                return
            act = out.detach()

            def grad_hook(grad: torch.Tensor) -> None:
                dtype = torch.promote_types(act.dtype, torch.float32)  # bf16 under autocast -> fp32
                per_example = (act.to(dtype) * grad.to(dtype)).sum((2, 3))  # N x C
                delta = 0.5 * per_example.pow(2).mean(0)
                self.sums[index] = self.sums[index] + delta if index in self.sums else delta

            out.register_hook(grad_hook)

        return hook

    def step(self) -> None:
        """Call once per optimisation step, so the mean is over minibatches."""
        self.steps += 1

    def saliency(self) -> dict[int, torch.Tensor]:
        if not self.steps:
            raise RuntimeError("no fine-tuning step was captured before asking for saliency")
        return {i: s / self.steps for i, s in self.sums.items()}

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def choose_channel(
    saliency: dict[int, torch.Tensor], spec: ArchSpec, flops_weight: float = 0.0, base_flops: int | None = None
) -> tuple[int, int, float]:
    """Global argmin over all live channels: (block, channel, score). One channel per decision.

    With ``flops_weight`` beta > 0 the score is ``Delta_c - beta * dFLOPs_b / FLOPs_base`` where
    dFLOPs_b is what removing one channel of block b saves, so cheaper-to-keep channels are favoured
    less. beta = 0 (the default) is the reference behaviour.
    """
    best: tuple[float, int, int] | None = None
    for b in spec.blocks:
        if b.mid == 0:
            continue
        score = saliency[b.index].detach().double().cpu()
        if flops_weight:
            fewer = list(spec.mids)
            fewer[b.index] -= 1
            saved = (spec.flops() - spec.with_mids(fewer).flops()) / (base_flops or spec.flops())
            score = score - flops_weight * saved
        c = int(torch.argmin(score))
        if best is None or float(score[c]) < best[0]:
            best = (float(score[c]), b.index, c)
    if best is None:
        raise ValueError("no prunable channel left")
    return best[1], best[2], best[0]
