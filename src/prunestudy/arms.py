"""What each training arm trains: its spec and its recipe, from the base network and config slices."""

from __future__ import annotations

from dataclasses import dataclass, field

from prunestudy.budgets import bottleneck_member, scale_to_params, scratch_b_epochs, width_member
from prunestudy.spec import ArchSpec
from prunestudy.train import Recipe


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
    arch: ArchSpec | None = None,
    member: float | None = None,
    scratch_epochs: int | None = None,
    max_factor: float | None = 2.0,
) -> ArmPlan:
    """Resolve ``arm`` to a spec and recipe.

    ``arch`` is the sampled (pruned) spec for the scratch arms and the source spec for ``scaled``;
    ``member`` is k' (width), Z (bottleneck) or the target fraction of base params (scaled).
    """
    if arm == "base":
        return ArmPlan(base, recipe)
    if arm in ("scratch-E", "scratch-B"):
        if arch is None:
            raise ValueError(f"{arm} needs the sampled architecture")
        epochs_e = scratch_epochs or recipe.epochs
        if arm == "scratch-E":
            return ArmPlan(arch, recipe.stretched(epochs_e), {"epochs_e": epochs_e})
        epochs_b = scratch_b_epochs(epochs_e, base.flops(), arch.flops(), max_factor)
        return ArmPlan(
            arch,
            recipe.stretched(epochs_b),
            {"epochs_e": epochs_e, "flops_ratio": base.flops() / arch.flops(), "max_factor": max_factor},
        )
    if member is None:
        raise ValueError(f"{arm} needs a member value")
    if arm == "width":
        return ArmPlan(width_member(base, member), recipe, {"member": member})
    if arm == "bottleneck":
        return ArmPlan(bottleneck_member(base, member), recipe, {"member": member})
    if arm == "scaled":
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
