"""The verdict rule and the Holm family of the claims table: one source for the code and the report.

Torch- and pandas-free, so that the Snakefile can put the rule's text into the report.
"""

from __future__ import annotations

import math

VERDICT_RULE = (
    '"beats" claims are *supported* when the Holm-corrected p < alpha and the effect is positive, '
    "*contradicted* when p < alpha and the effect is negative, and *inconclusive* otherwise. "
    '"matches or beats" claims are *contradicted* when p < alpha and the effect is negative; *supported* '
    "when p < alpha and the effect is positive, or when the CI's lower bound lies above minus the "
    "equivalence margin; *inconclusive* otherwise."
)

HOLM_FAMILY = (
    "Holm's correction runs once over the whole study: every distinct comparison in the claims table, one "
    "(experiment, worse arm, better arm) each, is one test of the family; claims that rest on the same "
    "comparison of one experiment share its corrected p-value."
)


def verdict(kind: str, effect: float, ci_low: float, p_holm: float, alpha: float, margin: float) -> str:
    """Apply :data:`VERDICT_RULE` to one claim (effect and CI oriented so that positive supports it)."""
    significant = math.isfinite(p_holm) and p_holm < alpha
    if not math.isfinite(effect):
        return "inconclusive"
    if significant and effect < 0:
        return "contradicted"
    if significant and effect > 0:
        return "supported"
    if kind == "matches_or_beats" and math.isfinite(ci_low) and ci_low > -margin:
        return "supported"
    return "inconclusive"
