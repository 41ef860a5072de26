"""Fisher pruning (Theis et al. 2018; Crowley et al.): an iterative method, one channel per decision.

For the masked activation ``a`` of a group's tap (after BN+ReLU) and ``g = dL/da`` with L the
*batch-mean* loss, as in Crowley et al.'s code:

    Delta_c = 1/2 * 1/N * sum_n ( sum_{h,w} a[n,c,h,w] * g[n,c,h,w] )^2

Deltas are summed over the fine-tuning minibatches since the last prune and divided by their count; the
global argmin goes (:func:`prunestudy.methods.selectors.one_at_a_time`). Because g carries 1/N, Delta
is the per-example form times 1/N^2 only when examples do not interact, i.e. with BN in eval mode; in
train mode BN couples the examples of a batch, and this is the batch quantity that the pytorch-prunes
hook computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from prunestudy.arch import ArchSpec
from prunestudy.methods.base import ITERATIVE, IterativeParams, Method
from prunestudy.methods.capture import ActivationCapture

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class FisherParams(IterativeParams):
    """Crowley et al.'s prune-and-tune loop (recipe B): the shared iterative settings, nothing more."""


def fisher_per_step(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """One minibatch's Delta per channel: 1/2 x the mean over examples of (sum over positions of a x g)^2."""
    return 0.5 * (act * grad).sum((2, 3)).pow(2).mean(0)


class Fisher(Method):
    """Watches fine-tuning through an :class:`~prunestudy.methods.capture.ActivationCapture` of Delta."""

    name: ClassVar[str] = "fisher"
    kind: ClassVar[str] = ITERATIVE
    params: ClassVar[type] = FisherParams

    @staticmethod
    def watch(model: nn.Module, spec: ArchSpec) -> ActivationCapture:
        return ActivationCapture(model, spec, fisher_per_step)
