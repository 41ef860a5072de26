"""The training arms: the only place their names are spelled, and what each one trains.

An arm is one way a network in the study came to be: the large ``base`` network, a ``pruned``
(pruned-and-tuned) network, the pruned architecture retrained from scratch for the same epochs
(``scratch-E``) or the same compute (``scratch-B``), or a member of a family trained from scratch
(``width``, ``bottleneck``, ``scaled``). Liu et al.'s guided architectures add ``guided`` (each group at
the mean kept ratio of the pruned runs of one target, from scratch) and ``uniform`` (every group of the
large network narrowed by one factor to the guided network's parameter count, from scratch). Every
other module refers to these constants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from prunestudy.arch import ArchSpec
from prunestudy.pruning.budgets import guided_spec, scale_to_params, scratch_b_epochs
from prunestudy.training.recipe import Recipe

BASE = "base"
PRUNED = "pruned"
PRUNED_LONG = "pruned-long"  # pruned and tuned from a large network trained as long as Scratch-B
SCRATCH_E = "scratch-E"
SCRATCH_B = "scratch-B"
WIDTH = "width"
BOTTLENECK = "bottleneck"
SCALED = "scaled"
GUIDED = "guided"
UNIFORM = "uniform"

BASE_LONG = "base-long"
ARMS = (BASE, PRUNED, SCRATCH_E, SCRATCH_B, WIDTH, BOTTLENECK, SCALED, BASE_LONG, PRUNED_LONG, GUIDED, UNIFORM)
SCRATCH = {"E": SCRATCH_E, "B": SCRATCH_B}  # the regime wildcard of the workflow -> the arm
RETRAINED = (PRUNED, SCRATCH_E, SCRATCH_B)  # the networks that come from one pruned architecture
TRAINED = (BASE, SCRATCH_E, SCRATCH_B, WIDTH, BOTTLENECK, SCALED, BASE_LONG, GUIDED, UNIFORM)  # `prunestudy train`
TUNED = (PRUNED, PRUNED_LONG)  # what `prunestudy oneshot` writes
GUIDE = (GUIDED, UNIFORM)  # trained from every pruning seed's architecture at one target
TARGETED = (*RETRAINED, PRUNED_LONG, *GUIDE)  # the networks that belong to one target
MEMBER_FAMILIES = (WIDTH, BOTTLENECK)  # built from the model options with one option changed
FAMILY_ARMS = (WIDTH, BOTTLENECK, SCALED)
# the curve each arm's networks belong to when families are compared at matched parameters
CURVES = {
    PRUNED: f"{PRUNED} (tuned)",
    SCRATCH_E: f"{PRUNED} ({SCRATCH_E})",
    SCRATCH_B: f"{PRUNED} ({SCRATCH_B})",
    WIDTH: WIDTH,
    BOTTLENECK: BOTTLENECK,
    SCALED: SCALED,
}


def trained_arms(experiment: Mapping[str, Any]) -> set[str]:
    """The arms a (validated) experiment config trains: every experiment its base, pruned and scratch arms;
    the guided pair, the long-base control and each family only where the config asks for them."""
    out = {BASE, PRUNED, SCRATCH_E, SCRATCH_B}
    if experiment["guided"]:
        out |= set(GUIDE)
    if experiment["long_base"]:
        out |= {BASE_LONG, PRUNED_LONG}
    families = experiment["families"]
    out |= {arm for arm in MEMBER_FAMILIES if families[arm]}
    if families[SCALED]["targets"]:
        out.add(SCALED)
    return out


@dataclass(frozen=True)
class ArmPlan:
    spec: ArchSpec
    recipe: Recipe
    extra: dict = field(default_factory=dict)


def plan(
    arm: str,
    base: ArchSpec,
    recipe: Recipe,
    *,
    member_spec: Callable[[str, float], ArchSpec] | None = None,
    arch: ArchSpec | None = None,
    member: float | None = None,
    scratch_epochs: int | None = None,
    max_factor: float | None = 2.0,
    arch_flops: int | None = None,
    long_epochs: int | None = None,
    guide: Sequence[ArchSpec] = (),
) -> ArmPlan:
    """Resolve ``arm`` to a spec and recipe.

    ``arch`` is the sampled (pruned) spec for the scratch arms and the source spec for ``scaled``;
    ``member`` is k' (width), Z (bottleneck) or the target fraction of base params (scaled), and
    ``member_spec(arm, member)`` builds a width or bottleneck member from the model options.
    ``guide`` holds every pruning seed's spec at the run's target (``guided`` and ``uniform``).
    ``arch_flops`` is the pruned network's FLOPs when they are not its spec's (a mask: FLOPs over the
    nonzero weights), so that Scratch-B's ratio always comes from the pruned network. ``long_epochs``
    is how long ``base-long`` trains: the experiment's longest Scratch-B budget.
    """
    if arm == BASE:
        return ArmPlan(base, recipe)
    if arm == BASE_LONG:
        if long_epochs is None:
            raise ValueError(f"{arm} needs the longest Scratch-B epoch budget")
        return ArmPlan(base, recipe.stretched(long_epochs), {"long_epochs": long_epochs})
    if arm in (SCRATCH_E, SCRATCH_B):
        if arch is None:
            raise ValueError(f"{arm} needs the sampled architecture")
        epochs_e = scratch_epochs or recipe.epochs
        if arm == SCRATCH_E:
            return ArmPlan(arch, recipe.stretched(epochs_e), {"epochs_e": epochs_e})
        pruned_flops = arch_flops or arch.flops()
        epochs_b = scratch_b_epochs(epochs_e, base.flops(), pruned_flops, max_factor)
        return ArmPlan(
            arch,
            recipe.stretched(epochs_b),
            {"epochs_e": epochs_e, "flops_ratio": base.flops() / pruned_flops, "max_factor": max_factor},
        )
    if arm in GUIDE:
        if not guide:
            raise ValueError(f"{arm} needs the pruned architectures of every pruning seed")
        guided = guided_spec(base, guide)
        if arm == GUIDED:
            return ArmPlan(guided, recipe, {"guide_spec_ids": [g.spec_id for g in guide]})
        spec, factor = scale_to_params(base, guided.param_count())
        return ArmPlan(spec, recipe, {"target_params": guided.param_count(), "scale_factor": factor})
    if member is None:
        raise ValueError(f"{arm} needs a member value")
    if arm in MEMBER_FAMILIES:
        if member_spec is None:
            raise ValueError(f"{arm} needs the model options to build its members")
        return ArmPlan(member_spec(arm, member), recipe, {"member": member})
    if arm == SCALED:
        if arch is None:
            raise ValueError("scaled needs the source architecture")
        target = round(member * base.param_count())
        spec, factor = scale_to_params(arch, target)
        return ArmPlan(
            spec,
            recipe,
            {"member": member, "target_params": target, "scale_factor": factor, "source_spec_id": arch.spec_id},
        )
    raise ValueError(f"unknown arm {arm!r}")
