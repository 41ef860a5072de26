"""Budget arithmetic: Scratch-B epochs, linear scaling, guided widths and budget sampling.

Where these follow the papers' reference code and where they deliberately do not: docs/deviations.md.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from fractions import Fraction

from prunestudy.arch import ArchSpec

log = logging.getLogger("prunestudy")


def scratch_b_epochs(epochs_e: int, base_flops: int, arch_flops: int, max_factor: float | None) -> int:
    """int(E x FLOPs_base / FLOPs_arch), capped at ``max_factor`` x E (None: uncapped, as Liu's CIFAR code).

    Truncation, not rounding, because Liu's scripts compute ``int(160 * (base_flops / pruned_flops))``
    (ResNet-56-A: 178 epochs, where rounding gives 179). A ratio <= 1 is a pruned architecture that is
    the large network itself (pruning removed nothing: SSS at a small gamma, an L1 setting of zero
    ratios, Slimming at target 0); the budget that matches its compute is then Scratch-E's, so it gets
    E epochs and a warning that states the ratio, rather than failing a job that has nothing to fix.
    """
    ratio = base_flops / arch_flops
    if ratio <= 1:
        log.warning(
            "Scratch-B FLOPs ratio is %.4f <= 1 (the architecture is not smaller than the large network): "
            "Scratch-B trains Scratch-E's %d epochs",
            ratio,
            epochs_e,
        )
        return epochs_e
    epochs = int(epochs_e * ratio)
    return epochs if max_factor is None else min(epochs, math.floor(max_factor * epochs_e))


def longest_scratch_b(epochs_e: int, base_flops: int, pruned_flops: list[int], max_factor: float | None) -> int:
    """The most epochs any of these pruned networks' Scratch-B trains: the blog's control trains the large
    network that long, so that Scratch-B's extra epochs are matched on the pruned-and-tuned side too."""
    return max(scratch_b_epochs(epochs_e, base_flops, f, max_factor) for f in pruned_flops)


def scale_to_params(source: ArchSpec, target: int, tol: float = 0.01) -> tuple[ArchSpec, float]:
    """Scale ``source``'s group widths by one common factor so that params land as close to ``target`` as they can.

    Bisection finds the factor; rounding makes params a step function of it, and on a small network one
    channel of a wide block is several percent of the total, so each mid is then rounded down or up
    (never further than 1 from mid x factor) in order of its remainder, keeping the closest count.
    When even that misses ``tol``, the closest member is kept with a warning: the family is compared at
    its members' real parameter counts, so a near miss costs nothing but a failed job would.
    """
    lo, hi = 0.0, 1.0
    while source.scaled(hi).param_count() < target:
        hi *= 2
        if hi > 1024:
            raise ValueError(f"cannot scale {source.spec_id} up to {target} params")
    best = (math.inf, source, 1.0)
    for _ in range(60):
        factor = (lo + hi) / 2
        for spec in _roundings(source, factor):
            gap = abs(spec.param_count() - target)
            if gap < best[0]:
                best = (gap, spec, factor)
        if best[0] <= tol * target:
            break
        lo, hi = (factor, hi) if source.scaled(factor).param_count() < target else (lo, factor)
    gap, spec, factor = best
    if gap > tol * target:
        log.warning(
            "scaling %s: the closest member has %d params, %.1f%% from the target %d",
            source.spec_id,
            spec.param_count(),
            100 * gap / target,
            target,
        )
    return spec, factor


def guided_spec(base: ArchSpec, pruned: Sequence[ArchSpec]) -> ArchSpec:
    """Liu et al.'s guided architecture (section 5): every group of a stage at the stage's mean kept ratio.

    A stage is the groups that run at one feature-map size (:meth:`ArchSpec.stages`). Liu et al.
    average the pruned networks' channel counts over a stage's layers and over the runs and give that
    average to every layer of the stage; groups of one stage can differ in base width (a DenseNet's
    selections), so the average is taken of kept ratios: for each run the mean over the stage's groups
    of pruned width / base width, then the mean over runs. Each group gets that ratio of its base
    width, rounded to the nearest channel (halves to even), never below one where any run kept the
    group; a group every run removed (a block of Sparse Structure Selection, say) stays removed.
    :func:`guided_layer_spec` is the per-group variant.
    """
    ratios = _kept_ratios(base, pruned)
    base_w = base.widths_vector
    widths = [0] * len(base_w)
    for stage in base.stages():
        live = [i for i in stage if base_w[i]]
        if not live:
            continue
        stage_ratio = sum(sum(run[i] for i in live) / len(live) for run in ratios) / len(ratios)
        for i in live:
            widths[i] = _guided_width(stage_ratio, base_w[i], any(run[i] for run in ratios))
    return base.with_widths(widths)


def guided_layer_spec(base: ArchSpec, pruned: Sequence[ArchSpec]) -> ArchSpec:
    """Each group of ``base`` at its own mean kept ratio over the ``pruned`` runs (not Liu's construction).

    Liu et al. average over a stage (:func:`guided_spec`); this was this project's construction before
    it followed them, and stays for comparing the two. Widths are rounded and kept alive as in
    :func:`guided_spec`.
    """
    ratios = _kept_ratios(base, pruned)
    return base.with_widths(
        [
            _guided_width(sum(run[i] for run in ratios) / len(ratios), w, any(run[i] for run in ratios))
            for i, w in enumerate(base.widths_vector)
        ]
    )


def _kept_ratios(base: ArchSpec, pruned: Sequence[ArchSpec]) -> list[list[Fraction]]:
    """Per run, each group's pruned width over its base width, exactly (so that a width lands on a
    half channel only when it truly does); a group of base width 0 has ratio 0."""
    if not pruned:
        raise ValueError("a guided architecture needs at least one pruned network")
    base_w = base.widths_vector
    for spec in pruned:
        if len(spec.widths_vector) != len(base_w):
            raise ValueError(f"{spec.spec_id} has {len(spec.widths_vector)} groups, the large network {len(base_w)}")
    return [
        [Fraction(p, w) if w else Fraction(0) for p, w in zip(s.widths_vector, base_w, strict=True)] for s in pruned
    ]


def _guided_width(ratio: Fraction, base_width: int, kept: bool) -> int:
    """``ratio`` x ``base_width`` to the nearest channel; at least one if any run kept the group, else 0."""
    return max(1, round(ratio * base_width)) if kept else 0


def _roundings(source: ArchSpec, factor: float) -> list[ArchSpec]:
    """Widths x factor, all rounded down, then rounded up one group at a time in order of remainder."""
    widths = source.widths_vector
    exact = [w * factor for w in widths]
    new = [0 if w == 0 else max(1, math.floor(x)) for w, x in zip(widths, exact, strict=True)]
    out = [source.with_widths(new)]
    for i in sorted(range(len(new)), key=lambda i: math.floor(exact[i]) - exact[i]):
        if widths[i] and new[i] < math.ceil(exact[i]):
            new[i] += 1
            out.append(source.with_widths(new))
    return out


def first_step_at_or_below(params: Sequence[int], budget_params: float) -> int:
    """Index of the first trajectory row whose params are at or below the budget."""
    for i, p in enumerate(params):
        if p <= budget_params:
            return i
    raise ValueError(
        f"the trajectory never reaches {budget_params:.0f} params (it ends at {params[-1]}); "
        "raise prune.max_prunes or lower prune.param_floor"
    )


def most_removable(spec: ArchSpec, removals: int, tapped_only: bool = True) -> int:
    """An upper bound on the parameters ``removals`` single-channel removals can take from ``spec``.

    Each channel is costed at what removing it saves from the full network (a channel's cost only falls as
    the layers it connects to narrow), the most expensive ``removals`` of them are summed, and every group
    that may be emptied adds what emptying it saves beyond its channels (a BN before the branch). With
    ``tapped_only``, only the groups an activation-based method prunes (those with a tap) count. Config
    validation uses it to refuse a Fisher target that ``max_prunes`` cannot reach, before any job.
    """
    full, widths = spec.param_count(), list(spec.widths_vector)
    costs, bonus = [], 0
    for i, g in enumerate(spec.groups()):
        if not g.width or (tapped_only and not g.tap):
            continue
        one_less = spec.with_widths([w - (j == i) for j, w in enumerate(widths)]).param_count()
        costs += [full - one_less] * (g.width if g.emptiable else g.width - 1)
        if g.emptiable:
            last = spec.with_widths([1 if j == i else w for j, w in enumerate(widths)]).param_count()
            none = spec.with_widths([0 if j == i else w for j, w in enumerate(widths)]).param_count()
            bonus += max(0, last - none - (full - one_less))
    return sum(sorted(costs, reverse=True)[:removals]) + bonus
