"""Each claim of the two papers as a row: measured effect, CI, Holm-corrected p-value and a verdict.

Every effect is oriented so that a positive value supports the claim: it is the test error of the
network the claim says is worse minus that of the one it says is better, in percentage points.
The table has one row per (claim, experiment) that the experiment can test. Holm's correction runs once
over the study (:data:`prunestudy.analysis.verdicts.HOLM_FAMILY`): two claims that rest on the same comparison of
one experiment (Liu's Scratch-E claim and Crowley's (b) against the tuned networks) share one test and one
corrected p-value. The verdict rule is :data:`prunestudy.analysis.verdicts.VERDICT_RULE`; both are printed in the
report from the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from prunestudy.analysis.stats import holm
from prunestudy.analysis.verdicts import verdict
from prunestudy.pruning.arms import (
    BOTTLENECK,
    CURVES,
    FAMILY_ARMS,
    GUIDED,
    PRUNED,
    PRUNED_LONG,
    SCALED,
    SCRATCH_B,
    SCRATCH_E,
    UNIFORM,
    WIDTH,
)


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    text: str
    kind: str  # "beats" | "matches_or_beats"
    worse: str  # the arm or family the claim says is worse
    better: str
    families_only: bool = False  # Crowley et al.'s claims: tested only where the experiment trains families


CLAIMS = (
    Claim(
        "liu-scratch-e",
        "Liu et al.",
        "Scratch-E matches or beats the pruned-and-fine-tuned network",
        "matches_or_beats",
        PRUNED,
        SCRATCH_E,
    ),
    Claim(
        "liu-scratch-b",
        "Liu et al.",
        "Scratch-B matches or beats the pruned-and-fine-tuned network",
        "matches_or_beats",
        PRUNED,
        SCRATCH_B,
    ),
    Claim(
        "liu-guided",
        "Liu et al.",
        "Guided architectures (the pruned runs' mean widths) from scratch match or beat uniform width reduction",
        "matches_or_beats",
        UNIFORM,
        GUIDED,
    ),
    Claim(
        "blog-long-base",
        "Crowley (blog)",
        "Scratch-B matches or beats the pruned-and-tuned network even when its large network trained as long",
        "matches_or_beats",
        PRUNED_LONG,
        SCRATCH_B,
    ),
    Claim(
        "crowley-a-width",
        "Crowley et al.",
        "(a) WRN-d-k' width family from scratch beats pruned-and-tuned networks at equal params",
        "beats",
        CURVES[PRUNED],
        WIDTH,
        families_only=True,
    ),
    Claim(
        "crowley-a-bottleneck",
        "Crowley et al.",
        "(a) bottleneck-Z family from scratch beats pruned-and-tuned networks at equal params",
        "beats",
        CURVES[PRUNED],
        BOTTLENECK,
        families_only=True,
    ),
    Claim(
        "crowley-b-tuned",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat their pruned-and-tuned versions",
        "beats",
        PRUNED,
        SCRATCH_E,
        families_only=True,
    ),
    Claim(
        "crowley-b-width",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the width family",
        "beats",
        WIDTH,
        CURVES[SCRATCH_E],
        families_only=True,
    ),
    Claim(
        "crowley-b-bottleneck",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the bottleneck family",
        "beats",
        BOTTLENECK,
        CURVES[SCRATCH_E],
        families_only=True,
    ),
    Claim(
        "crowley-c-width",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the width family",
        "matches_or_beats",
        WIDTH,
        SCALED,
        families_only=True,
    ),
    Claim(
        "crowley-c-bottleneck",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the bottleneck family",
        "matches_or_beats",
        BOTTLENECK,
        SCALED,
        families_only=True,
    ),
)


PAIRED_EVIDENCE = "paired Wilcoxon over (target, seed)"
FAMILY_EVIDENCE = "family curves at matched params (t over seeds)"

COLUMNS = (
    "experiment",
    "claim",
    "paper",
    "statement",
    "kind",
    "effect_pp",
    "ci_low_pp",
    "ci_high_pp",
    "p",
    "p_holm",
    "verdict",
    "evidence",
)


def _measure(
    claim: Claim, paired: pd.DataFrame, families: pd.DataFrame
) -> tuple[float, float, float, float, str] | None:
    """(effect, ci_low, ci_high, raw p, source) in error fractions, oriented to support the claim.

    A comparison of two arms on the same architectures (or the same targets) comes from the paired
    table; a comparison of curves comes from the families table, which may list the pair either way
    round. None where the experiment lacks one of the claim's arms: the claim does not apply to it.
    """
    row = paired[paired["comparison"] == f"{claim.worse} - {claim.better}"]
    if len(row):
        r = row.iloc[0]
        return r["mean_diff"], r["ci_low"], r["ci_high"], r["p_wilcoxon"], PAIRED_EVIDENCE
    for a, b, sign in ((claim.worse, claim.better, 1), (claim.better, claim.worse, -1)):
        row = families[(families["family_a"] == a) & (families["family_b"] == b)]
        if len(row):
            r = row.iloc[0]
            lo, hi = sorted((sign * r["ci_low"], sign * r["ci_high"]))
            return sign * r["mean_diff"], lo, hi, r["p_t"], FAMILY_EVIDENCE
    return None


def claims_table(
    experiments: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], alpha: float = 0.05, margin: float = 0.005
) -> pd.DataFrame:
    """One row per (claim, experiment) that the experiment's arms can test, with Holm over the whole study.

    Crowley et al.'s claims are read only where the experiment trains families (width, bottleneck or
    scaled appear in its families table, beside the pruned curves every experiment has); Liu et al.'s
    wherever the arms exist.

    ``experiments`` maps each experiment to its (paired, families) tables. The family of Holm's
    correction is :data:`prunestudy.analysis.verdicts.HOLM_FAMILY`: each distinct (experiment, worse, better)
    measurement counts once, and claims resting on it share its corrected p-value.
    """
    rows = []
    for name, (paired, families) in experiments.items():
        trains_families = bool(set(families["family_a"]).union(families["family_b"]) & set(FAMILY_ARMS))
        for c in (c for c in CLAIMS if trains_families or not c.families_only):
            if (measured := _measure(c, paired, families)) is None:
                continue
            effect, lo, hi, p, source = measured
            rows.append(
                {
                    "experiment": name,
                    "claim": c.id,
                    "paper": c.paper,
                    "statement": c.text,
                    "kind": c.kind,
                    "effect_pp": 100 * effect,
                    "ci_low_pp": 100 * lo,
                    "ci_high_pp": 100 * hi,
                    "p": p,
                    "evidence": source,
                    "measurement": (name, *sorted((c.worse, c.better))),
                }
            )
    df = pd.DataFrame(rows, columns=[*COLUMNS, "measurement"])
    first = df.drop_duplicates("measurement")
    corrected = dict(zip(first["measurement"], holm(first["p"]), strict=True))
    df["p_holm"] = [corrected[m] for m in df["measurement"]]
    df["verdict"] = [
        verdict(r.kind, r.effect_pp / 100, r.ci_low_pp / 100, r.p_holm, alpha, margin) for r in df.itertuples()
    ]
    return df.drop(columns="measurement")[list(COLUMNS)]
