"""Unstructured magnitude pruning, "Deep Compression" without quantisation (Han et al. 2015), as Liu et
al. run it on CIFAR (STUDY.md section 7): one global threshold over |w| of every conv weight (the
stem and shortcut convs included; no linear layer, no BN).

Exactly ``int(total * target)`` weights with the smallest |w| are pruned, ties going to the earlier
tensor and position (the reference keeps |w| > the value at that index). The result is a mask: the
architecture is unchanged, and training keeps the pruned weights and their momentum at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from prunestudy.methods.base import Method, Pruning

if TYPE_CHECKING:
    import torch

    from prunestudy.arch import ArchSpec


@dataclass(frozen=True)
class MagnitudeParams:
    """No settings: the target is the fraction of conv weights pruned."""


class Magnitude(Method):
    name: ClassVar[str] = "magnitude"
    kind: ClassVar[str] = "oneshot"
    params: ClassVar[type] = MagnitudeParams

    @staticmethod
    def prune(state: Mapping[str, torch.Tensor], spec: ArchSpec, target: float, params: MagnitudeParams) -> Pruning:
        import torch

        names = [n for n, t in state.items() if n.endswith(".weight") and t.dim() == 4]  # conv weights
        flat = torch.cat([state[n].detach().abs().float().cpu().flatten() for n in names])
        k = int(len(flat) * target)
        order = torch.sort(flat, stable=True).indices  # ties: the earlier weight goes first
        pruned = torch.zeros(len(flat), dtype=torch.bool)
        pruned[order[:k]] = True
        mask, start = {}, 0
        for n in names:
            size = state[n].numel()
            mask[n] = ~pruned[start : start + size].view(state[n].shape)
            start += size
        threshold = float(flat[order[k - 1]]) if k else 0.0
        return Pruning(mask=mask, record={"weights": len(flat), "pruned": k, "threshold": threshold})
