"""Network Slimming (Liu et al. 2017), as Liu et al. 2019 run it on CIFAR (docs/deviations.md).

Sparsity training adds ``s * sign(gamma)`` to the gradient of every prunable BN scale after
``backward`` (the loss is unchanged). Pruning pools |gamma| over every group that a BN scales (a
channel selection scores the BN channels it reads), and removes exactly ``int(total * target)`` of
the smallest, ties going to the earlier group and position; the reference instead removes every
channel at or below the value at that index, one more plus ties. One call of surgery then removes
them all.

**Empty groups.** A global threshold can take every channel of a layer (the reference then crashes
with an IndexError). Rule: a group that may be emptied (a residual branch, a DenseNet layer) is
emptied and its block becomes its shortcut; a plain layer (VGG, a transition, the classifier's input)
keeps its one channel of largest |gamma|. Both are recorded (``emptied``, ``kept_one``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from prunestudy.io.options import Range, Settings
from prunestudy.methods.base import ONESHOT, Method, Pruning, TrainHooks
from prunestudy.methods.selectors import global_threshold

if TYPE_CHECKING:
    import torch
    from torch import nn

    from prunestudy.arch import ArchSpec
    from prunestudy.training.optim import SGD


@dataclass(frozen=True)
class SlimmingParams(Settings):
    sparsity: Annotated[float, Range(min=0)] = 1e-4  # s: 1e-4 for VGG-19, 1e-5 for PreResNet-164, DenseNet-40


def scales(state: Mapping[str, torch.Tensor], spec: ArchSpec) -> dict[str, torch.Tensor]:
    """|gamma| per position of every live group that a BN scales."""
    out = {}
    for g in spec.groups():
        if g.scale is None or g.scale not in state or not g.width:
            continue
        gamma = state[g.scale].detach().abs().float().cpu()
        out[g.name] = gamma[list(g.scale_index)] if g.scale_index is not None else gamma
    return out


class Slimming(Method):
    name: ClassVar[str] = "slimming"
    kind: ClassVar[str] = ONESHOT
    params: ClassVar[type] = SlimmingParams

    @staticmethod
    def regulariser(params: SlimmingParams, target: Any) -> dict[str, Any]:
        return {"sparsity": params.sparsity}

    @staticmethod
    def hooks(model: nn.Module, opt: SGD, spec: ArchSpec, regulariser: Mapping[str, Any]) -> TrainHooks:
        import torch

        s = regulariser["sparsity"]
        params = dict(model.named_parameters())
        gammas = sorted({g.scale for g in spec.groups() if g.scale in params})
        weights = [params[n] for n in gammas]

        @torch.no_grad()
        def subgradient() -> None:
            for w in weights:
                if w.grad is not None:
                    w.grad.add_(torch.sign(w), alpha=s)

        return TrainHooks(after_backward=[subgradient])

    @staticmethod
    def prune(state: Mapping[str, torch.Tensor], spec: ArchSpec, target: float, params: SlimmingParams, **_) -> Pruning:
        removals, record = global_threshold(scales(state, spec), target, spec)
        record["rule"] = (
            "an emptiable group (residual branch, DenseNet layer) is emptied and becomes its shortcut; "
            "a plain layer keeps its channel of largest |gamma|"
        )
        return Pruning(removals=removals, record=record)
