"""Unstructured magnitude pruning, "Deep Compression" without quantisation (Han et al. 2015), as Liu et
al. run it on CIFAR (docs/deviations.md): one global threshold over |w| of every conv weight (the
stem and shortcut convs included; no linear layer, no BN).

Exactly ``int(total * target)`` weights with the smallest |w| are pruned, ties going to the earlier
tensor and position (the reference keeps |w| > the value at that index). The result is a mask: the
architecture is unchanged, and training keeps the pruned weights and their momentum at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from prunestudy.methods.base import MASK, ONESHOT, Method, Pruning
from prunestudy.methods.selectors import smallest

if TYPE_CHECKING:
    import torch

    from prunestudy.arch import ArchSpec


@dataclass(frozen=True)
class MagnitudeParams:
    """No settings: the target is the fraction of conv weights pruned."""


class Magnitude(Method):
    name: ClassVar[str] = "magnitude"
    kind: ClassVar[str] = ONESHOT
    produces: ClassVar[str] = MASK
    params: ClassVar[type] = MagnitudeParams

    @staticmethod
    def prune(
        state: Mapping[str, torch.Tensor], spec: ArchSpec, target: float, params: MagnitudeParams, **_
    ) -> Pruning:
        import torch

        names = [n for n, t in state.items() if n.endswith(".weight") and t.dim() == 4]  # conv weights
        weights = [state[n].detach().abs() for n in names]
        k = int(sum(w.numel() for w in weights) * target)
        picked = smallest(weights, k)
        pruned = {n: torch.zeros(state[n].numel(), dtype=torch.bool) for n in names}
        for owner, position in picked:
            pruned[names[owner]][position] = True
        mask = {n: ~pruned[n].view(state[n].shape) for n in names}
        threshold = float(weights[picked[-1][0]].flatten()[picked[-1][1]]) if picked else 0.0
        return Pruning(
            mask=mask, record={"weights": sum(w.numel() for w in weights), "pruned": k, "threshold": threshold}
        )
