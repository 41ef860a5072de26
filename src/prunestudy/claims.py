"""Each claim of the two papers as a row: measured effect, CI, Holm-corrected p-value and a verdict.

Every effect is oriented so that a positive value supports the claim: it is the test error of the
network the claim says is worse minus that of the one it says is better, in percentage points.

Verdict rule (also printed in the report):
- "beats" claims are *supported* when the Holm-corrected p < alpha and the effect is positive,
  *contradicted* when p < alpha and the effect is negative, and *inconclusive* otherwise.
- "matches or beats" claims are *contradicted* when p < alpha and the effect is negative; *supported*
  when p < alpha and the effect is positive, or when the CI's lower bound lies above minus the
  equivalence margin; *inconclusive* otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunestudy.stats import holm

VERDICT_RULE = __doc__.split("Verdict rule (also printed in the report):")[1].strip()


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
        "pruned",
        "scratch-E",
    ),
    Claim(
        "liu-scratch-b",
        "Liu et al.",
        "Scratch-B matches or beats the pruned-and-fine-tuned network",
        "matches_or_beats",
        "pruned",
        "scratch-B",
    ),
    Claim(
        "crowley-a-width",
        "Crowley et al.",
        "(a) WRN-d-k' width family from scratch beats pruned-and-tuned networks at equal params",
        "beats",
        "pruned (tuned)",
        "width",
    ),
    Claim(
        "crowley-a-bottleneck",
        "Crowley et al.",
        "(a) bottleneck-Z family from scratch beats pruned-and-tuned networks at equal params",
        "beats",
        "pruned (tuned)",
        "bottleneck",
    ),
    Claim(
        "crowley-b-tuned",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat their pruned-and-tuned versions",
        "beats",
        "pruned",
        "scratch-E",
    ),
    Claim(
        "crowley-b-width",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the width family",
        "beats",
        "width",
        "pruned (scratch-E)",
    ),
    Claim(
        "crowley-b-bottleneck",
        "Crowley et al.",
        "(b) pruned architectures trained from scratch beat the bottleneck family",
        "beats",
        "bottleneck",
        "pruned (scratch-E)",
    ),
    Claim(
        "crowley-c-width",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the width family",
        "matches_or_beats",
        "width",
        "scaled",
    ),
    Claim(
        "crowley-c-bottleneck",
        "Crowley et al.",
        "(c) linearly scaling one pruned architecture matches or beats the bottleneck family",
        "matches_or_beats",
        "bottleneck",
        "scaled",
    ),
)


def _measure(claim: Claim, paired: pd.DataFrame, families: pd.DataFrame) -> tuple[float, float, float, float, str]:
    """(effect, ci_low, ci_high, raw p, source) in error fractions, oriented to support the claim."""
    if claim.worse == "pruned" and claim.better.startswith("scratch"):
        row = paired[paired["comparison"] == f"pruned - {claim.better}"]
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


def verdict(kind: str, effect: float, ci_low: float, p_holm: float, alpha: float, margin: float) -> str:
    significant = bool(np.isfinite(p_holm) and p_holm < alpha)
    if not np.isfinite(effect):
        return "inconclusive"
    if significant and effect < 0:
        return "contradicted"
    if significant and effect > 0:
        return "supported"
    if kind == "matches_or_beats" and np.isfinite(ci_low) and ci_low > -margin:
        return "supported"
    return "inconclusive"


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
    df["p_holm"] = holm(df["p"])
    df["verdict"] = [
        verdict(r.kind, r.effect_pp / 100, r.ci_low_pp / 100, r.p_holm, alpha, margin) for r in df.itertuples()
    ]
    return df
