"""Taylor pruning (Molchanov et al., ICLR 2017): an iterative method, one channel per decision, like Fisher.

The first-order Taylor estimate of the change in the loss when channel c of a tapped activation ``a`` is
zeroed is ``sum a * dL/da`` over the channel's entries. Molchanov et al.'s criterion is its magnitude,
averaged over the batch and the positions, and normalised per layer by the L2 norm of the layer's scores
so that layers of different depth compete on one scale:

    Theta_c = | mean_{n,h,w} a[n,c,h,w] * g[n,c,h,w] |,   score_c = Theta_c / || Theta_layer ||_2

with g the gradient of the batch-mean loss. The signed means are averaged over the fine-tuning minibatches
since the last prune before the magnitude is taken (as the reference implementations accumulate), and
the global argmin goes. Fisher's criterion is the square of the per-example sum; Taylor's the magnitude
of the batch mean.
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
class TaylorParams(IterativeParams):
    """The shared iterative settings (fine-tuning between prunes as Fisher's, by default)."""


def taylor_per_step(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """One minibatch's signed mean of a x g per channel, over examples and positions."""
    return (act * grad).mean((0, 2, 3))


def normalise_per_layer(means: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """|mean| of each channel over its layer's L2 norm (a layer of all-zero scores stays zero)."""
    import torch

    out = {}
    for name, m in means.items():
        theta = m.abs()
        out[name] = theta / torch.linalg.vector_norm(theta).clamp_min(torch.finfo(theta.dtype).tiny)
    return out


class Taylor(Method):
    name: ClassVar[str] = "taylor"
    kind: ClassVar[str] = ITERATIVE
    params: ClassVar[type] = TaylorParams

    @staticmethod
    def watch(model: nn.Module, spec: ArchSpec) -> ActivationCapture:
        return ActivationCapture(model, spec, taylor_per_step, normalise_per_layer)
