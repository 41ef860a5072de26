"""The decision procedure of the claims table: one rule, written once, for the code, the report and the simulation.

A claim says that one network (or family) is better than another. Its *effect* is the test error of the
network the claim calls worse minus that of the one it calls better, per seed, so that a positive effect
supports it. Each claim has a *threshold* theta on its effect (:func:`threshold`): "matches or beats" is
a non-inferiority claim (theta = -margin), "beats" a superiority claim by the margin (theta = +margin).
Two one-sided t-tests ask whether the effect lies above theta (the claim) or below it (its opposite);
Holm's step-down runs over both hypotheses of every claim of the study, and a verdict is *supported* or
*contradicted* when the corresponding corrected p-value is below alpha, *inconclusive* otherwise.
``docs/statistics.md`` explains each choice; :mod:`prunestudy.analysis.calibration` measures the error
rates by simulation.

Every function takes numpy arrays whose last axis runs over claims (or seeds) and any leading axes, so the
simulation decides thousands of studies in one call through the very code that decides the real one.
The texts import nothing heavy, so that the Snakefile can put them into the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MATCHES_OR_BEATS = "matches_or_beats"
BEATS = "beats"
KINDS = {
    MATCHES_OR_BEATS: "non-inferiority: the effect exceeds minus the margin",
    BEATS: "superiority by the margin: the effect exceeds plus the margin",
}
SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"

VERDICT_RULE = (
    "Each claim's effect is measured per seed (the seed of the large network is the unit of replication) as the "
    "test error of the network the claim calls worse minus that of the one it calls better, so that a positive "
    'effect supports it. A "matches or beats" claim holds when the effect exceeds minus the equivalence margin '
    '(non-inferiority), a "beats" claim when it exceeds plus the margin (superiority by the margin). Two '
    "one-sided t-tests over the seeds ask whether the effect lies above that threshold (the claim) or below it "
    "(its opposite): paired over the seeds where both arms retrain the seed's own pruned architecture, Welch's "
    "otherwise. A claim is *supported* when the Holm-corrected p-value of its test is below alpha, "
    "*contradicted* when that of the opposite test is, and *inconclusive* otherwise. The interval printed "
    "beside each effect is simultaneous over the study (Bonferroni, two-sided at 1 - alpha/m for m claims): an "
    "interval wholly beyond the threshold always comes with a decisive verdict."
)

HOLM_FAMILY = (
    "Holm's step-down correction runs once over the whole study: every claim row of every experiment "
    "contributes two one-sided hypotheses (the claim, and its opposite), so that the chance of any wrong "
    "decisive verdict anywhere in the study stays at or below alpha, in either direction."
)

RESOLUTION_NOTE = (
    "A seed-level standard deviation below one test image's worth of error (1/N_test) is raised to it: with a "
    "handful of seeds, quantised errors can coincide, and a spread of exactly zero would make any difference "
    "look certain."
)


def threshold(kind: str, margin: float) -> float:
    """The effect a claim of ``kind`` must exceed: minus the margin (matches or beats) or plus it (beats)."""
    if kind not in KINDS:
        raise ValueError(f"unknown claim kind {kind!r}; expected one of {sorted(KINDS)}")
    return -margin if kind == MATCHES_OR_BEATS else margin


@dataclass(frozen=True)
class Evidence:
    """A claim's seed-level estimate: mean effect, its standard error and degrees of freedom, seeds used,
    and the seed-level standard deviation of the effect (arrays over leading axes)."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    n: np.ndarray
    sd: np.ndarray

    FIELDS = ("estimate", "se", "df", "n", "sd")


def paired_evidence(worse: np.ndarray, better: np.ndarray, resolution: float) -> Evidence:
    """One difference per seed (last axis), where both arms retrain that seed's architecture; NaN seeds dropped."""
    import numpy as np

    d = np.asarray(worse, float) - np.asarray(better, float)
    n = np.sum(~np.isnan(d), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.maximum(_nanstd(d, n), resolution)
        return Evidence(_nanmean(d, n), sd / np.sqrt(n), (n - 1).astype(float), n, sd)


def welch_evidence(worse: np.ndarray, better: np.ndarray, resolution: float) -> Evidence:
    """Two independent sets of seed-level values (last axis): Welch's standard error and degrees of freedom."""
    import numpy as np

    w, b = np.asarray(worse, float), np.asarray(better, float)
    nw, nb = np.sum(~np.isnan(w), axis=-1), np.sum(~np.isnan(b), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vw = np.maximum(_nanstd(w, nw), resolution) ** 2 / nw
        vb = np.maximum(_nanstd(b, nb), resolution) ** 2 / nb
        est = _nanmean(w, nw) - _nanmean(b, nb)
        df = (vw + vb) ** 2 / (vw**2 / (nw - 1) + vb**2 / (nb - 1))
        sd = np.sqrt(vw * nw + vb * nb)  # the spread of one seed's difference, for the power computation
        return Evidence(est, np.sqrt(vw + vb), df, np.minimum(nw, nb), sd)


def evidence(worse: np.ndarray, better: np.ndarray, paired: np.ndarray, resolution: float) -> Evidence:
    """Each claim's evidence (``paired`` along the claims axis, the one before the seeds): paired where the
    seed fixes both arms' architecture, Welch's otherwise."""
    import numpy as np

    by_pair = paired_evidence(worse, better, resolution), welch_evidence(worse, better, resolution)
    return Evidence(*(np.where(paired, getattr(by_pair[0], f), getattr(by_pair[1], f)) for f in Evidence.FIELDS))


def _nanmean(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.where(n > 0, np.nansum(x, axis=-1) / np.maximum(n, 1), np.nan)


def _nanstd(x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Sample standard deviation over the last axis ignoring NaNs; NaN below two values (no warning)."""
    import numpy as np

    mean = _nanmean(x, n)[..., None]
    ss = np.nansum((x - mean) ** 2, axis=-1)
    return np.where(n > 1, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)


def one_sided(ev: Evidence, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p-values of the claim's test (effect > theta) and of the opposite test (effect < theta)."""
    import numpy as np
    from scipy import stats

    with np.errstate(invalid="ignore", divide="ignore"):
        t = (ev.estimate - theta) / ev.se
    ok = np.isfinite(t) & (ev.df > 0)
    p_claim = np.where(ok, stats.t.sf(np.where(ok, t, 0.0), np.where(ok, ev.df, 1.0)), np.nan)
    p_opposite = np.where(ok, stats.t.cdf(np.where(ok, t, 0.0), np.where(ok, ev.df, 1.0)), np.nan)
    return p_claim, p_opposite


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis; NaNs are not tests and stay NaN."""
    import numpy as np

    p = np.asarray(p, float)
    valid = ~np.isnan(p)
    k = valid.sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(valid, p, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    factor = k - np.arange(p.shape[-1])
    adjusted = np.minimum(1.0, np.maximum.accumulate(np.where(factor > 0, ranked * factor, np.nan), axis=-1))
    out = np.empty_like(p)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return np.where(valid, out, np.nan)


def directional_holm(p_claim: np.ndarray, p_opposite: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Holm over both one-sided hypotheses of every claim (last axis: claims), as :data:`HOLM_FAMILY` says."""
    import numpy as np

    m = p_claim.shape[-1]
    both = holm(np.concatenate([p_claim, p_opposite], axis=-1))
    return both[..., :m], both[..., m:]


def verdict(p_claim_holm: np.ndarray, p_opposite_holm: np.ndarray, alpha: float) -> np.ndarray:
    """Apply :data:`VERDICT_RULE` to corrected p-values (the two cannot both fall below alpha < 0.5)."""
    import numpy as np

    out = np.full(np.shape(p_claim_holm), INCONCLUSIVE, dtype=object)
    out[np.asarray(p_claim_holm) < alpha] = SUPPORTED
    out[np.asarray(p_opposite_holm) < alpha] = CONTRADICTED
    return out


def simultaneous_interval(ev: Evidence, alpha: float, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided intervals at 1 - alpha/m each: together they cover every claim's effect with probability
    at least 1 - alpha (Bonferroni), the family :data:`HOLM_FAMILY` controls."""
    import numpy as np
    from scipy import stats

    with np.errstate(invalid="ignore"):
        half = stats.t.ppf(1 - alpha / (2 * max(m, 1)), np.where(ev.df > 0, ev.df, np.nan)) * ev.se
    return ev.estimate - half, ev.estimate + half


@dataclass(frozen=True)
class Decision:
    """What the study decided about each claim (arrays over leading axes; last axis: claims)."""

    evidence: Evidence
    theta: np.ndarray
    p: np.ndarray  # the raw one-sided p-value of the direction the estimate points
    p_holm: np.ndarray  # its Holm-corrected value: below alpha, it decided the verdict
    verdict: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def decide(ev: Evidence, theta: np.ndarray, alpha: float) -> Decision:
    """Every claim of a study (last axis) decided at once: tests, Holm over the study, verdicts, intervals."""
    import numpy as np

    p_claim, p_opposite = one_sided(ev, theta)
    h_claim, h_opposite = directional_holm(p_claim, p_opposite)
    toward = ~(p_opposite < p_claim)  # the direction the estimate points (the claim's when tied or undefined)
    m = int(np.max(np.sum(~np.isnan(p_claim), axis=-1), initial=0))
    lo, hi = simultaneous_interval(ev, alpha, m)
    return Decision(
        ev,
        np.broadcast_to(theta, p_claim.shape),
        np.where(toward, p_claim, p_opposite),
        np.where(toward, h_claim, h_opposite),
        verdict(h_claim, h_opposite, alpha),
        lo,
        hi,
    )


def power(distance: float, sd: float, n: np.ndarray, level: float, paired: bool) -> np.ndarray:
    """Probability that a one-sided t-test at ``level`` rejects when the effect lies ``distance`` beyond the
    threshold, with ``n`` seeds (per arm, unpaired) and a seed-level SD ``sd`` of the effect (noncentral t)."""
    import numpy as np
    from scipy import stats

    n = np.asarray(n, float)
    df = n - 1 if paired else 2 * n - 2
    ncp = abs(distance) * np.sqrt(n) / sd
    return stats.nct.sf(stats.t.ppf(1 - level, df), df, ncp)


def seeds_needed(
    distance: float, sd: float, level: float, paired: bool, target: float = 0.8, most: int = 1000
) -> float:
    """The fewest seeds (at least 2) that give ``target`` power to reach a decisive verdict, or NaN when even
    ``most`` seeds would not (an estimate on its threshold, or no spread measured)."""
    import numpy as np

    if not (np.isfinite(distance) and np.isfinite(sd) and sd > 0 and distance != 0):
        return float("nan")
    n = np.arange(2, most + 1)
    reached = np.flatnonzero(power(distance, sd, n, level, paired) >= target)
    return float(n[reached[0]]) if len(reached) else float("nan")
