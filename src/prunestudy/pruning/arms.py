"""The training arms: the only place their names are spelled, and what each one trains.

An arm is one way a network in the study came to be: the large ``base`` network, a ``pruned``
(pruned-and-tuned) network, the pruned architecture retrained from scratch for the same epochs
(``scratch-E``) or the same compute (``scratch-B``), or a member of a family trained from scratch
(``width``, ``bottleneck``, ``scaled``). Liu et al.'s guided architectures add ``guided`` (each stage at
the mean kept ratio of the pruned runs of one target, section 5), ``guided-layer`` (each group at its
own mean kept ratio, for comparison) and ``uniform`` (every group of the large network narrowed by one
factor to the guided network's parameter count). Their lottery-ticket comparison (section 6) adds
``winning-ticket`` (the pruned architecture or mask trained from the large network's own initial
weights) and ``random-init`` (the same from a fresh initialisation), each at a configured learning rate.
Every other module refers to these constants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prunestudy.arch import ArchSpec
from prunestudy.io.paths import at_lr, split_lr
from prunestudy.pruning.budgets import guided_layer_spec, guided_spec, scale_to_params, scratch_b_epochs
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
GUIDED_LAYER = "guided-layer"
UNIFORM = "uniform"
WINNING_TICKET = "winning-ticket"
RANDOM_INIT = "random-init"

BASE_LONG = "base-long"
SCRATCH = {"E": SCRATCH_E, "B": SCRATCH_B}  # the regime wildcard of the workflow -> the arm
RETRAINED = (PRUNED, SCRATCH_E, SCRATCH_B)  # the networks that come from one pruned architecture
TUNED = (PRUNED, PRUNED_LONG)  # what `prunestudy oneshot` writes
GUIDE = (GUIDED, GUIDED_LAYER, UNIFORM)  # trained from every pruning seed's architecture at one target
LOTTERY = (WINNING_TICKET, RANDOM_INIT)  # one pruned network's architecture or mask, at a configured lr
TARGETED = (*RETRAINED, PRUNED_LONG, *GUIDE, *LOTTERY)  # the networks that belong to one target
MEMBER_FAMILIES = (WIDTH, BOTTLENECK)  # built from the model options with one option changed
FAMILY_ARMS = (WIDTH, BOTTLENECK, SCALED)
ARMS = (BASE, BASE_LONG, *TARGETED, *FAMILY_ARMS)
TRAINED = tuple(a for a in ARMS if a not in TUNED)  # what `prunestudy train` trains
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
    the guided arms, the lottery arms (one name per learning rate, :func:`at_lr`), the long-base control and
    each family only where the config asks for them."""
    out = {BASE, PRUNED, SCRATCH_E, SCRATCH_B}
    if experiment["guided"]:
        out |= {GUIDED, UNIFORM}
    if experiment["guided_layer"]:
        out.add(GUIDED_LAYER)
    out |= {at_lr(arm, lr) for arm in LOTTERY for lr in experiment["lottery"]["lrs"]}
    if experiment["long_base"]:
        out |= {BASE_LONG, PRUNED_LONG}
    families = experiment["families"]
    out |= {arm for arm in MEMBER_FAMILIES if families[arm]}
    if families[SCALED]["targets"]:
        out.add(SCALED)
    return out


def arm_of(name: str) -> str:
    """The arm of a name the analysis compares: an arm, or a lottery arm at one learning rate (:func:`at_lr`)."""
    return split_lr(name)[0]


def targeted(name: str) -> bool:
    """Whether the networks of an arm (or a lottery arm at one learning rate) belong to one target."""
    return arm_of(name) in TARGETED


def in_order(names: Sequence[str]) -> list[str]:
    """The distinct targeted names in :data:`TARGETED` order, the lottery arms by learning rate (descending),
    the winning ticket beside its random initialisation at each."""

    def key(name: str) -> tuple[int, float, int]:
        arm, lr = split_lr(name)
        place = TARGETED.index(LOTTERY[0] if arm in LOTTERY else arm)
        return place, -(lr or 0), TARGETED.index(arm)

    return sorted(set(names), key=key)


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
    lr: float | None = None,
) -> ArmPlan:
    """Resolve ``arm`` to a spec and recipe.

    ``arch`` is the sampled (pruned) spec for the scratch and lottery arms and the source spec for
    ``scaled``; ``member`` is k' (width), Z (bottleneck) or the target fraction of base params (scaled),
    and ``member_spec(arm, member)`` builds a width or bottleneck member from the model options.
    ``guide`` holds every pruning seed's spec at the run's target (the guided arms and ``uniform``).
    ``arch_flops`` is the pruned network's FLOPs when they are not its spec's (a mask: FLOPs over the
    nonzero weights), so that Scratch-B's ratio always comes from the pruned network. ``long_epochs``
    is how long ``base-long`` trains: the experiment's longest Scratch-B budget. ``lr`` is a lottery
    arm's initial learning rate (Liu et al. compare 0.1 and 0.01).
    """
    a = _Args(base, recipe, member_spec, arch, member, scratch_epochs, max_factor, arch_flops, long_epochs, guide, lr)
    for arms, make in _PLANNERS:
        if arm in arms:
            return make(arm, a)
    raise ValueError(f"unknown arm {arm!r}")


@dataclass(frozen=True)
class _Args:
    base: ArchSpec
    recipe: Recipe
    member_spec: Callable[[str, float], ArchSpec] | None
    arch: ArchSpec | None
    member: float | None
    scratch_epochs: int | None
    max_factor: float | None
    arch_flops: int | None
    long_epochs: int | None
    guide: Sequence[ArchSpec]
    lr: float | None

    def needs(self, arm: str, what: str) -> Any:
        value = getattr(self, what)
        if value is None or (what == "guide" and not value):
            raise ValueError(f"{arm} needs {_NEEDS[what]}")
        return value


_NEEDS = {
    "arch": "the sampled architecture",
    "long_epochs": "the longest Scratch-B epoch budget",
    "guide": "the pruned architectures of every pruning seed",
    "member": "a member value",
    "member_spec": "the model options to build its members",
    "lr": "its learning rate",
}


def _base(arm: str, a: _Args) -> ArmPlan:
    if arm == BASE:
        return ArmPlan(a.base, a.recipe)
    epochs = a.needs(arm, "long_epochs")
    return ArmPlan(a.base, a.recipe.stretched(epochs), {"long_epochs": epochs})


def _scratch(arm: str, a: _Args) -> ArmPlan:
    arch, epochs_e = a.needs(arm, "arch"), a.scratch_epochs or a.recipe.epochs
    if arm == SCRATCH_E:
        return ArmPlan(arch, a.recipe.stretched(epochs_e), {"epochs_e": epochs_e})
    pruned_flops = a.arch_flops or arch.flops()
    epochs_b = scratch_b_epochs(epochs_e, a.base.flops(), pruned_flops, a.max_factor)
    extra = {"epochs_e": epochs_e, "flops_ratio": a.base.flops() / pruned_flops, "max_factor": a.max_factor}
    return ArmPlan(arch, a.recipe.stretched(epochs_b), extra)


def _guide(arm: str, a: _Args) -> ArmPlan:
    guide = a.needs(arm, "guide")
    if arm == GUIDED_LAYER:
        return ArmPlan(guided_layer_spec(a.base, guide), a.recipe, {"guide_spec_ids": [g.spec_id for g in guide]})
    guided = guided_spec(a.base, guide)
    if arm == GUIDED:
        return ArmPlan(guided, a.recipe, {"guide_spec_ids": [g.spec_id for g in guide]})
    spec, factor = scale_to_params(a.base, guided.param_count())
    return ArmPlan(spec, a.recipe, {"target_params": guided.param_count(), "scale_factor": factor})


def _lottery(arm: str, a: _Args) -> ArmPlan:
    """The base recipe (Scratch-E's epochs) at the arm's learning rate, on the pruned architecture."""
    arch, lr, epochs_e = a.needs(arm, "arch"), a.needs(arm, "lr"), a.scratch_epochs or a.recipe.epochs
    return ArmPlan(arch, replace(a.recipe.stretched(epochs_e), lr=lr), {"epochs_e": epochs_e, "lr": lr})


def _family(arm: str, a: _Args) -> ArmPlan:
    member = a.needs(arm, "member")
    if arm in MEMBER_FAMILIES:
        return ArmPlan(a.needs(arm, "member_spec")(arm, member), a.recipe, {"member": member})
    arch, target = a.needs(arm, "arch"), round(member * a.base.param_count())
    spec, factor = scale_to_params(arch, target)
    extra = {"member": member, "target_params": target, "scale_factor": factor, "source_spec_id": arch.spec_id}
    return ArmPlan(spec, a.recipe, extra)


_PLANNERS = (
    ((BASE, BASE_LONG), _base),
    ((SCRATCH_E, SCRATCH_B), _scratch),
    (GUIDE, _guide),
    (LOTTERY, _lottery),
    (FAMILY_ARMS, _family),
)
