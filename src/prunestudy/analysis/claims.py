"""Each claim of the two papers as a row: seed-level effect, simultaneous interval, corrected p-value, verdict.

A claim applies to an experiment when the experiment trains both of its arms (Crowley et al.'s only where
it trains a family). Its effect is read from the experiment's seed-level units
(:func:`prunestudy.analysis.stats.units_table`), oriented so that a positive value supports it, and every
claim of the study is decided at once by :func:`prunestudy.analysis.verdicts.decide`: the rule
(:data:`~prunestudy.analysis.verdicts.VERDICT_RULE`) and the family of Holm's correction
(:data:`~prunestudy.analysis.verdicts.HOLM_FAMILY`) are printed in the report from the same text.
``docs/statistics.md`` gives each claim's source sentence and why it is tested the way it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunestudy.analysis import verdicts
from prunestudy.analysis.verdicts import BEATS, MATCHES_OR_BEATS
from prunestudy.io.paths import at_lr, split_lr
from prunestudy.pruning.arms import (
    BOTTLENECK,
    CURVES,
    FAMILY_ARMS,
    GUIDED,
    LOTTERY,
    PRUNED,
    PRUNED_LONG,
    RANDOM_INIT,
    SCALED,
    SCRATCH_B,
    SCRATCH_E,
    UNIFORM,
    WIDTH,
    WINNING_TICKET,
    arm_of,
    targeted,
)


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    text: str
    kind: str  # verdicts.BEATS | verdicts.MATCHES_OR_BEATS
    worse: str  # the arm or curve the claim says is worse
    better: str
    families_only: bool = False  # Crowley et al.'s claims: tested only where the experiment trains families

    @property
    def arms(self) -> tuple[str, str]:
        """The trained arms the claim needs (a curve stands for the arm whose networks draw it)."""
        return _ARM_OF.get(self.worse, self.worse), _ARM_OF.get(self.better, self.better)


_ARM_OF = {curve: arm for arm, curve in CURVES.items()}

CLAIMS = (
    Claim(
        "liu-scratch-e",
        "Liu et al.",
        "Scratch-E matches or beats the pruned-and-fine-tuned network",
        MATCHES_OR_BEATS,
        PRUNED,
        SCRATCH_E,
    ),
    Claim(
        "liu-scratch-b",
        "Liu et al.",
        "Scratch-B matches or beats the pruned-and-fine-tuned network",
        MATCHES_OR_BEATS,
        PRUNED,
        SCRATCH_B,
    ),
    Claim(
        "liu-guided",
        "Liu et al.",
        "Guided architectures (the pruned runs' mean widths) from scratch beat uniform width reduction",
        BEATS,
        UNIFORM,
        GUIDED,
    ),
    Claim(
        "blog-long-base",
        "Crowley (blog)",
        "Scratch-B matches or beats the pruned-and-tuned network even when its large network trained as long",
        MATCHES_OR_BEATS,
        PRUNED_LONG,
        SCRATCH_B,
    ),
    Claim(
        "crowley-a-width",
        "Crowley et al.",
        "(a) WRN-d-k' width family from scratch beats pruned-and-tuned networks at equal params",
        BEATS,
        CURVES[PRUNED],
        WIDTH,
        families_only=True,
    ),
    Claim(
        "crowley-a-bottleneck",
        "Crowley et al.",
        "(a) bottleneck-Z family from scratch beats pruned-and-tuned networks at equal params",
        BEATS,
        CURVES[PRUNED],
        BOTTLENECK,
        families_only=True,
    ),
    Claim(
        "crowley-b-tuned",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat their pruned-and-tuned versions",
        BEATS,
        PRUNED,
        SCRATCH_E,
        families_only=True,
    ),
    Claim(
        "crowley-b-width",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the width family",
        BEATS,
        WIDTH,
        CURVES[SCRATCH_E],
        families_only=True,
    ),
    Claim(
        "crowley-b-bottleneck",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the bottleneck family",
        BEATS,
        BOTTLENECK,
        CURVES[SCRATCH_E],
        families_only=True,
    ),
    Claim(
        "crowley-c-width",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the width family",
        MATCHES_OR_BEATS,
        WIDTH,
        SCALED,
        families_only=True,
    ),
    Claim(
        "crowley-c-bottleneck",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the bottleneck family",
        MATCHES_OR_BEATS,
        BOTTLENECK,
        SCALED,
        families_only=True,
    ),
)


def lottery_claims(names: Iterable[str]) -> list[Claim]:
    """Liu et al.'s lottery-ticket claim (section 6) at every learning rate whose lottery arms ``names`` holds
    (names as :func:`prunestudy.pruning.arms.trained_arms` gives them): each rate is its own claim, since the
    paper finds the winning ticket no better at 0.1 and better at 0.01 (unstructured pruning)."""
    lrs = sorted({lr for n in names if arm_of(n) in LOTTERY and (lr := split_lr(n)[1]) is not None}, reverse=True)
    return [
        Claim(
            at_lr("liu-lottery", lr),
            "Liu et al.",
            f"At initial learning rate {lr:g}, a random initialisation of the pruned network matches or beats "
            "the winning ticket (the large network's own initial weights); Liu et al. find this at 0.1, and "
            "the winning ticket better at 0.01 for unstructured pruning",
            MATCHES_OR_BEATS,
            at_lr(WINNING_TICKET, lr),
            at_lr(RANDOM_INIT, lr),
        )
        for lr in lrs
    ]


def comparisons(names: Iterable[str] = ()) -> tuple[tuple[str, str], ...]:
    """Every comparison a claim makes, (worse, better), once: what an experiment whose runs carry these arm
    names (:func:`prunestudy.analysis.collect.compared`) reduces to seed-level units."""
    return tuple(dict.fromkeys((c.worse, c.better) for c in (*CLAIMS, *lottery_claims(names))))


UNIT_EVIDENCE = "one mean per seed (over its targets); t-test over seeds"
CURVE_EVIDENCE = "one mean per seed over the matched-params grid; t-test over seeds"

COLUMNS = (
    "experiment",
    "claim",
    "paper",
    "statement",
    "kind",
    "paired",
    "n_seeds",
    "threshold_pp",
    "effect_pp",
    "ci_low_pp",
    "ci_high_pp",
    "sd_pp",
    "p",
    "p_holm",
    "verdict",
    "seeds_needed",
    "note",
    "evidence",
)


def applicable(trained: Iterable[str]) -> list[Claim]:
    """The claims an experiment that trains these arms can test, in :data:`CLAIMS` order."""
    trained = set(trained)
    with_families = bool(trained & set(FAMILY_ARMS))
    every = (*CLAIMS, *lottery_claims(trained))
    return [c for c in every if set(c.arms) <= trained and (with_families or not c.families_only)]


def _units(units: pd.DataFrame, claim: Claim, experiment: str) -> pd.DataFrame:
    rows = units[(units["worse"] == claim.worse) & (units["better"] == claim.better)]
    if not len(rows):
        raise ValueError(
            f"experiment {experiment} trains the arms of claim {claim.id} but its units table has no "
            f"{claim.worse} - {claim.better} rows: rerun its compare job"
        )
    return rows


def claims_table(
    experiments: Mapping[str, tuple[Iterable[str], pd.DataFrame]], alpha: float, margin: float, resolution: float
) -> pd.DataFrame:
    """Every applicable claim of every experiment, decided together (Holm over the whole study).

    ``experiments`` maps each experiment to (the arms it trains, its seed-level units table);
    ``resolution`` is one test image's worth of error (:data:`prunestudy.analysis.verdicts.RESOLUTION_NOTE`).
    """
    rows, worse, better = [], [], []
    for name, (trained, units) in experiments.items():
        for c in applicable(trained):
            u = _units(units, c, name)
            rows.append((name, c, bool(u["paired"].iloc[0])))
            worse.append(u.set_index("seed")["worse_error"])
            better.append(u.set_index("seed")["better_error"])
    if not rows:
        return pd.DataFrame(columns=list(COLUMNS))
    seeds = sorted(set().union(*(w.index for w in worse), *(b.index for b in better)))
    w = np.array([x.reindex(seeds).to_numpy(float) for x in worse])
    b = np.array([x.reindex(seeds).to_numpy(float) for x in better])
    ev = verdicts.evidence(w, b, np.array([p for _, _, p in rows]), resolution)
    theta = np.array([verdicts.threshold(c.kind, margin) for _, c, _ in rows])
    d = verdicts.decide(ev, theta, alpha)
    level = alpha / (2 * len(rows))  # Holm's first step (Bonferroni): what a single claim must beat at worst
    return pd.DataFrame([_row(name, c, p, i, d, level) for i, (name, c, p) in enumerate(rows)], columns=list(COLUMNS))


def _row(name: str, c: Claim, paired: bool, i: int, d: verdicts.Decision, level: float) -> dict:
    ev = d.evidence
    n = int(ev.n[i])
    needed = verdicts.seeds_needed(float(ev.estimate[i] - d.theta[i]), float(ev.sd[i]), level, paired)
    return {
        "experiment": name,
        "claim": c.id,
        "paper": c.paper,
        "statement": c.text,
        "kind": c.kind,
        "paired": paired,
        "n_seeds": n,
        "threshold_pp": 100 * float(d.theta[i]),
        "effect_pp": 100 * float(ev.estimate[i]),
        "ci_low_pp": 100 * float(d.ci_low[i]),
        "ci_high_pp": 100 * float(d.ci_high[i]),
        "sd_pp": 100 * float(ev.sd[i]),
        "p": float(d.p[i]),
        "p_holm": float(d.p_holm[i]),
        "verdict": d.verdict[i],
        "seeds_needed": needed,
        "note": note(d.verdict[i], n, needed),
        "evidence": UNIT_EVIDENCE if targeted(c.worse) and targeted(c.better) else CURVE_EVIDENCE,
    }


def note(verdict: str, n: int, needed: float) -> str:
    """One sentence on what more seeds would do, from the observed spread (as the report prints it)."""
    if verdict != verdicts.INCONCLUSIVE:
        return f"{verdict} with {n} seeds"
    if not np.isfinite(needed):
        return f"inconclusive with {n} seeds; the estimate sits on its threshold, so no number of seeds decides it"
    if needed <= n:
        return f"inconclusive with {n} seeds, although {n} usually decide an effect this large"
    return f"inconclusive with {n} seeds; about {needed:.0f} would decide it"
