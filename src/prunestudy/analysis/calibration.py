"""How often the claims table decides right: studies simulated with the real structure, decided by the real code.

A simulated study has the claims of a real config (:meth:`Design.from_config`: which claims each
experiment tests, paired or not, how many targets each seed averages, the Holm family of all of them).
Each claim's test errors are drawn per (seed, target) as the sum of a seed-level component shared by the
seed's targets (and, for a paired comparison, by both arms: the seed's pruned architecture), an
arm-level component per seed and a per-target residual, quantised to whole test images; half the variance
of a seed's effect comes from each of the seed and the targets. The seed-level reduction and the decision
(:func:`prunestudy.analysis.verdicts.decide`) are the functions the claims table uses, applied to every
simulated study at once. ``docs/statistics.md`` reports what this module measures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from prunestudy.analysis import verdicts
from prunestudy.analysis.claims import applicable
from prunestudy.analysis.stats import is_paired
from prunestudy.pruning.arms import targeted, trained_arms

MEAN_ERROR = 0.05  # the error level the simulated networks sit at (only the quantisation notices it)
SEEDS = (3, 5, 10)
OC_COLUMNS = ("n_seeds", "distance_pp", "supported", "contradicted", "inconclusive")


@dataclass(frozen=True)
class Design:
    """The claims of one study as the simulation reproduces them (one entry per claim, in table order)."""

    paired: np.ndarray  # bool
    targets: np.ndarray  # units each seed averages: its targets for arm comparisons, 1 for curves
    theta: np.ndarray  # the threshold each claim's effect must exceed
    n_test: int  # test images: errors are whole multiples of 1 / n_test

    @classmethod
    def from_config(cls, experiments: Iterable[Mapping[str, Any]], margin: float, n_test: int) -> Design:
        """The claims a validated config's experiments test, with their Holm family."""
        rows = [
            (is_paired(c.worse, c.better), len(e["targets"]) if targeted(c.worse) else 1, c.kind)
            for e in experiments
            for c in applicable(trained_arms(e))
        ]
        if not rows:
            raise ValueError("the config's experiments test no claim: there is nothing to calibrate")
        paired, targets, kinds = zip(*rows, strict=True)
        theta = [verdicts.threshold(k, margin) for k in kinds]
        return cls(np.array(paired), np.array(targets), np.array(theta), n_test)

    @property
    def claims(self) -> int:
        return len(self.theta)


def simulate(
    design: Design, effect: np.ndarray, sd: float, n_seeds: int, studies: int, rng: np.random.Generator, alpha: float
) -> np.ndarray:
    """Verdicts (studies x claims) of ``studies`` simulated studies whose claims have true ``effect``
    (per claim, error fraction, positive supporting) and a seed-level SD ``sd`` of each effect."""
    m, t = design.claims, int(design.targets.max())
    used = np.arange(t) < design.targets[:, None, None]  # claims x 1 x targets: which target slots exist
    seed = (studies, m, n_seeds, 1)
    shared = rng.normal(0.0, sd, seed) * design.paired[:, None, None]  # the seed's architecture, both arms
    residual = sd * np.sqrt(design.targets)[:, None, None] / 2

    def errors(shift: np.ndarray) -> np.ndarray:
        own = rng.normal(0.0, sd / 2, seed) + rng.normal(0.0, 1.0, (studies, m, n_seeds, t)) * residual
        x = np.clip(np.round((MEAN_ERROR + shift[:, None, None] + shared + own) * design.n_test), 0, design.n_test)
        return np.where(used, x / design.n_test, np.nan)

    worse, better = errors(np.zeros(m)), errors(-np.asarray(effect, float))
    units = (np.nanmean(worse, axis=-1), np.nanmean(better, axis=-1))  # one number per seed, as the table does
    ev = verdicts.evidence(*units, design.paired, 1 / design.n_test)
    return verdicts.decide(ev, design.theta, alpha).verdict


def rates(outcomes: np.ndarray) -> dict[str, float]:
    """The share of studies in each verdict (one claim's column of :func:`simulate`)."""
    return {
        v: float(np.mean(outcomes == v)) for v in (verdicts.SUPPORTED, verdicts.CONTRADICTED, verdicts.INCONCLUSIVE)
    }


def focal(design: Design, claim: int, distance: float, sd: float, n_seeds: int, studies: int, seed: int, alpha: float):
    """One claim's verdict rates when its effect lies ``distance`` beyond its threshold (negative: short of
    it) and every other claim of the study sits exactly on its own: the other claims then almost never
    reject, so Holm's correction bears on this one with all its weight (the least favourable case)."""
    effect = design.theta.copy()
    effect[claim] += distance
    out = simulate(design, effect, sd, n_seeds, studies, np.random.default_rng(seed), alpha)
    return rates(out[:, claim])


def family_wise_error(design: Design, sd: float, n_seeds: int, studies: int, seed: int, alpha: float) -> float:
    """The share of studies with any decisive verdict when every claim's effect sits exactly on its threshold,
    where each of the two decisive verdicts is wrong (the least favourable configuration)."""
    out = simulate(design, design.theta.copy(), sd, n_seeds, studies, np.random.default_rng(seed), alpha)
    return float(np.mean((out != verdicts.INCONCLUSIVE).any(axis=1)))


def operating_characteristics(
    design: Design,
    sd: float,
    alpha: float,
    studies: int,
    distances: Sequence[float] = tuple(np.linspace(-0.04, 0.04, 33)),
    seeds: Sequence[int] = SEEDS,
    claim: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """P(supported), P(contradicted), P(inconclusive) of one claim against its true distance from the threshold,
    for each seed count: the curves the report draws."""
    rows = [
        (n, 100 * d, *focal(design, claim, d, sd, n, studies, seed + i, alpha).values())
        for i, (n, d) in enumerate((n, d) for n in seeds for d in distances)
    ]
    return pd.DataFrame(rows, columns=list(OC_COLUMNS))


def power_table(sd: float, alpha: float, claims: int, distance: float = 0.015) -> pd.DataFrame:
    """At a seed-level SD ``sd``, how many seeds give 80% power to decide an effect ``distance`` from its
    threshold, for a paired and an unpaired comparison, at the level Holm's first step asks of one claim."""
    level = alpha / (2 * claims)
    return pd.DataFrame(
        [
            (kind, 100 * sd, 100 * distance, verdicts.seeds_needed(distance, sd, level, kind == "paired"))
            for kind in ("paired", "unpaired")
        ],
        columns=["comparison", "seed_sd_pp", "distance_pp", "seeds_for_80pct_power"],
    )
