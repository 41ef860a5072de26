"""Budget arithmetic: Scratch-B epochs, linear scaling, guided widths and budget sampling."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from prunestudy.arch import ArchSpec

log = logging.getLogger("prunestudy")


def scratch_b_epochs(epochs_e: int, base_flops: int, arch_flops: int, max_factor: float | None) -> int:
    """round(E x FLOPs_base / FLOPs_arch), capped at ``max_factor`` x E (None: uncapped, as Liu's CIFAR code).

    ``arch_flops`` must be the pruned architecture's, not a dense net's: a ratio <= 1 means the
    caller compared the wrong networks (STUDY.md section 6.2), so it is an error.
    """
    ratio = base_flops / arch_flops
    if ratio <= 1:
        raise ValueError(f"Scratch-B FLOPs ratio is {ratio:.4f} <= 1: the architecture is not smaller than the base")
    epochs = round(epochs_e * ratio)
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
    """Liu et al.'s guided architecture: each group of ``base`` at the mean kept ratio of the ``pruned`` runs.

    The ratio of a group is its pruned width over the base width, averaged over the runs; the width is
    that ratio of the base width rounded to the nearest channel, never below one where any run kept the
    group (a group every run removed, a block of Sparse Structure Selection say, stays removed).
    """
    base_w = base.widths_vector
    for spec in pruned:
        if len(spec.widths_vector) != len(base_w):
            raise ValueError(f"{spec.spec_id} has {len(spec.widths_vector)} groups, the large network {len(base_w)}")
    ratios = [sum(s.widths_vector[i] for s in pruned) / (len(pruned) * w) for i, w in enumerate(base_w)]
    return base.with_widths([max(1, round(r * w)) if r else 0 for r, w in zip(ratios, base_w, strict=True)])


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
