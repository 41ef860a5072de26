"""Each claim of the two papers as a row: measured effect, CI, Holm-corrected p-value and a verdict.

Every effect is oriented so that a positive value supports the claim: it is the test error of the
network the claim says is worse minus that of the one it says is better, in percentage points.
Holm's correction runs over the distinct measurements of the table: two claims that rest on the same
comparison (Liu's Scratch-E claim and Crowley's (b) against the tuned networks) share one test and one
corrected p-value. The verdict rule is :data:`prunestudy.verdicts.VERDICT_RULE`, also printed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from prunestudy.arms import BOTTLENECK, CURVES, PRUNED, PRUNED_LONG, SCALED, SCRATCH_B, SCRATCH_E, WIDTH
from prunestudy.stats import holm
from prunestudy.verdicts import verdict


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    text: str
    kind: str  # "beats" | "matches_or_beats"
    worse: str  # the arm or family the claim says is worse
    better: str


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
    ),
    Claim(
        "crowley-a-bottleneck",
        "Crowley et al.",
        "(a) bottleneck-Z family from scratch beats pruned-and-tuned networks at equal params",
        "beats",
        CURVES[PRUNED],
        BOTTLENECK,
    ),
    Claim(
        "crowley-b-tuned",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat their pruned-and-tuned versions",
        "beats",
        PRUNED,
        SCRATCH_E,
    ),
    Claim(
        "crowley-b-width",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the width family",
        "beats",
        WIDTH,
        CURVES[SCRATCH_E],
    ),
    Claim(
        "crowley-b-bottleneck",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the bottleneck family",
        "beats",
        BOTTLENECK,
        CURVES[SCRATCH_E],
    ),
    Claim(
        "crowley-c-width",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the width family",
        "matches_or_beats",
        WIDTH,
        SCALED,
    ),
    Claim(
        "crowley-c-bottleneck",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the bottleneck family",
        "matches_or_beats",
        BOTTLENECK,
        SCALED,
    ),
)


def _measure(claim: Claim, paired: pd.DataFrame, families: pd.DataFrame) -> tuple[float, float, float, float, str]:
    """(effect, ci_low, ci_high, raw p, source) in error fractions, oriented to support the claim."""
    if claim.worse in (PRUNED, PRUNED_LONG) and claim.better in (SCRATCH_E, SCRATCH_B):
        row = paired[paired["comparison"] == f"{claim.worse} - {claim.better}"]
        if len(row):
            r = row.iloc[0]
            return r["mean_diff"], r["ci_low"], r["ci_high"], r["p_wilcoxon"], "paired Wilcoxon over (budget, seed)"
    else:
        for a, b, sign in ((claim.worse, claim.better, 1), (claim.better, claim.worse, -1)):
            row = families[(families["family_a"] == a) & (families["family_b"] == b)]
            if len(row):
                r = row.iloc[0]
                lo, hi = sorted((sign * r["ci_low"], sign * r["ci_high"]))
                return sign * r["mean_diff"], lo, hi, r["p_t"], "family curves at matched params (t over seeds)"
    nan = float("nan")
    return nan, nan, nan, nan, "not measured: an arm is missing"


def claims_table(
    paired: pd.DataFrame, families: pd.DataFrame, alpha: float = 0.05, margin: float = 0.005
) -> pd.DataFrame:
    rows = []
    for c in CLAIMS:
        effect, lo, hi, p, source = _measure(c, paired, families)
        rows.append(
            {
                "claim": c.id,
                "paper": c.paper,
                "statement": c.text,
                "kind": c.kind,
                "effect_pp": 100 * effect,
                "ci_low_pp": 100 * lo,
                "ci_high_pp": 100 * hi,
                "p": p,
                "evidence": source,
            }
        )
    df = pd.DataFrame(rows)
    # one test per distinct measurement: claims on the same comparison share it
    measurement = [frozenset((c.worse, c.better)) for c in CLAIMS]
    first = {m: i for i, m in reversed(list(enumerate(measurement)))}
    unique = sorted(set(first.values()))
    corrected = holm(df.loc[unique, "p"])
    df["p_holm"] = [corrected[first[m]] for m in measurement]
    df["verdict"] = [
        verdict(r.kind, r.effect_pp / 100, r.ci_low_pp / 100, r.p_holm, alpha, margin) for r in df.itertuples()
    ]
    return df
