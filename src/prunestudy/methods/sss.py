"""Sparse Structure Selection (Huang & Wang, ECCV 2018), written from the paper and the MXNet code.

A CIFAR ResNet gets one factor per residual branch, out = ReLU(shortcut + lambda_b x branch), with no
weight decay (the reference's ``wd_mult=0``). The factors are trained by an accelerated proximal
gradient step (APG-NAG, as in TuSimple's ``core/optimizer.py``) in place of SGD, with the run's
learning rate and momentum:

    z = soft_threshold(lambda - lr * g, lr * gamma);  v = z - lambda + mu * v;  lambda = max(0, z + mu * v)

Everything else trains with SGD as usual. The update is the reference's, step for step: the clip to
zero comes after the momentum step and touches the factor only, never its velocity, and nothing is
frozen. A factor at zero is therefore not absorbing: it revives as soon as its gradient outgrows
gamma (from rest, g < -gamma), or when a positive velocity carries it back, so the pruned
architecture is what the factors are when training stops. Then the blocks whose factor is zero are
removed, and the others' factors are folded into their last BN (its scale and shift times lambda):
the pruned network is a plain ResNet of fewer blocks per stage, whatever Scratch-E/B retrain. The
target is the sparsity weight gamma; the factors are recorded. Where this project still differs
from the reference: docs/deviations.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from prunestudy.methods.base import ONESHOT, Method, Pruning, TrainHooks

if TYPE_CHECKING:
    import torch
    from torch import nn

    from prunestudy.arch import ArchSpec
    from prunestudy.training.optim import SGD


@dataclass(frozen=True)
class SSSParams:
    """No settings beyond the target (gamma, the sparsity weight of the block factors)."""


def apg_step(lam: torch.Tensor, grad: torch.Tensor, v: torch.Tensor, lr: float, mu: float, gamma: float) -> None:
    """One APG-NAG update of the factors ``lam`` and their momentum ``v``, in place, as the reference.

    The order matters and is TuSimple's: decay the momentum, take the proximal (soft-threshold) step
    ``z``, set ``v = z - lam + mu * v``, move to ``z + mu * v`` and only then clip the factor at zero.
    ``v`` is neither clipped nor reset, so a factor clipped to zero keeps the velocity that may bring
    it back, and a factor at zero revives when its proximal step leaves it positive.
    """
    import torch

    z = lam - lr * grad
    z = torch.sign(z) * torch.clamp(z.abs() - lr * gamma, min=0.0)
    v.mul_(mu).add_(z - lam)
    lam.copy_(torch.clamp(z + mu * v, min=0.0))


class SSS(Method):
    name: ClassVar[str] = "sss"
    kind: ClassVar[str] = ONESHOT
    params: ClassVar[type] = SSSParams

    @staticmethod
    def base_options(model: Mapping[str, Any]) -> dict[str, Any]:
        if model.get("family") != "resnet":
            raise ValueError("Sparse Structure Selection is defined here for CIFAR ResNets (family resnet)")
        return {**model, "gates": True}

    @staticmethod
    def regulariser(params: SSSParams, target: float) -> dict[str, Any]:
        return {"gamma": target}

    @staticmethod
    def hooks(model: nn.Module, opt: SGD, spec: ArchSpec, regulariser: Mapping[str, Any]) -> TrainHooks:
        import torch

        gates = [p for n, p in model.named_parameters() if n.endswith(".gate")]
        grads: list[torch.Tensor] = []

        def take_gradients() -> None:
            # the factors are APG's, not SGD's: with no gradient, the SGD step skips them, so neither
            # its momentum nor its weight decay touches them (the reference's wd_mult=0)
            grads[:] = [p.grad.detach().clone() for p in gates]
            for p in gates:
                p.grad = None

        @torch.no_grad()
        def proximal_step() -> None:
            # the APG velocity lives in the optimizer's buffers, so that resume state carries it
            for p, g in zip(gates, grads, strict=True):
                v = opt.buffers.setdefault(p, torch.zeros_like(p))
                apg_step(p.data, g, v, opt.lr, opt.momentum, regulariser["gamma"])

        return TrainHooks(after_backward=[take_gradients], after_step=[proximal_step])

    @staticmethod
    def prune(state: Mapping[str, torch.Tensor], spec: ArchSpec, target: float, params: SSSParams, **_) -> Pruning:
        factors = {g.name: float(state[f"{g.name}.gate"]) for g in spec.groups() if f"{g.name}.gate" in state}
        removals = {g.name: list(range(g.width)) for g in spec.groups() if factors.get(g.name, 1.0) == 0.0}
        per_stage = [
            sum(1 for i in range(s * spec.n, (s + 1) * spec.n) if spec.mids[i] and f"blocks.{i}" not in removals)
            for s in range(3)
        ]
        return Pruning(removals=removals, record={"gamma": target, "factors": factors, "blocks_per_stage": per_stage})

    @staticmethod
    def after_surgery(spec: ArchSpec, state: Mapping[str, torch.Tensor]) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
        out = {k: v for k, v in state.items() if not k.endswith(".gate")}
        for k, lam in state.items():
            if k.endswith(".gate"):
                block = k.removesuffix(".gate")
                out[f"{block}.bn2.weight"] = state[f"{block}.bn2.weight"] * lam
                out[f"{block}.bn2.bias"] = state[f"{block}.bn2.bias"] * lam
        return replace(spec, gates=False), out
