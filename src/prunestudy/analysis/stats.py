"""Statistics for the comparisons both papers make.

Per budget, the fine-tuned arm and the two scratch regimes are compared on the same architectures
(Welch's t, Mann-Whitney U, Hedges' g); across budgets, a paired Wilcoxon test pairs each pruned
network with its own from-scratch retrain. Families are compared at matched parameter counts by
interpolating each seed's error against log(params) onto a common grid inside the range all curves
share. Holm's correction is applied within each table.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from prunestudy.pruning.arms import (
    CURVES,
    GUIDED,
    PRUNED,
    PRUNED_LONG,
    RETRAINED,
    SCRATCH_B,
    SCRATCH_E,
    TARGETED,
    UNIFORM,
)

ARM_PAIRS = ((PRUNED, SCRATCH_E), (PRUNED, SCRATCH_B), (SCRATCH_E, SCRATCH_B))
# (worse, better) pairs over (target, seed): tuned vs scratch; the blog's control (a large network trained
# as long); and Liu's guided architectures against uniform narrowing to the same params
PAIRED = ((PRUNED, SCRATCH_E), (PRUNED, SCRATCH_B), (PRUNED_LONG, SCRATCH_B), (UNIFORM, GUIDED))
BOOTSTRAP_SEED = 0  # the bootstrap's resampling is seeded: a rerun reproduces every interval
INTERP_COLUMNS = ("family", "seed", "params", "error")
PAIRED_COLUMNS = ("comparison", "n_pairs", "mean_diff", "ci_low", "ci_high", "p_wilcoxon")


def mean_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample std, and a t-based confidence interval (nan bounds for n < 2)."""
    x = np.asarray(x, dtype=float)
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan"), float("nan")
    sd = float(x.std(ddof=1))
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * sd / np.sqrt(len(x))
    return m, sd, m - half, m + half


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Standardised mean difference (a - b) with the small-sample correction."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return float("nan")
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    if pooled == 0:
        return 0.0 if a.mean() == b.mean() else float(np.sign(a.mean() - b.mean()) * np.inf)
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (na + nb) - 9)))


def holm(p: pd.Series) -> pd.Series:
    """Holm-adjusted p-values; NaNs stay NaN and do not count as tests."""
    out = pd.Series(np.nan, index=p.index)
    ok = p.notna()
    if ok.any():
        out[ok] = multipletests(p[ok].to_numpy(), method="holm")[1]
    return out


def _two_sample(a: np.ndarray, b: np.ndarray) -> dict:
    """Welch's t and Mann-Whitney U p-values and Hedges' g (two non-empty arms); a test that cannot run
    gives nan, except that two arms of one and the same value give Welch's p = 1."""
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        identical = np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]
        welch, mwu = (1.0 if identical else float("nan")), float("nan")
    else:
        welch = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        mwu = float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return {"p_welch": welch, "p_mannwhitney": mwu, "hedges_g": hedges_g(a, b)}


def budget_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per budget: each arm's test-error summary and each pair's tests (Holm within the table)."""
    rows = []
    sub = runs[runs["arm"].isin(RETRAINED)]
    for budget, g in sub.groupby("budget"):
        err = {arm: g.loc[g["arm"] == arm, "test_error"].to_numpy() for arm in RETRAINED}
        for a, b in ARM_PAIRS:
            if not len(err[a]) or not len(err[b]):
                continue
            ma, sa, loa, hia = mean_ci(err[a])
            mb, sb, lob, hib = mean_ci(err[b])
            rows.append(
                {
                    "budget": budget,
                    "arm_a": a,
                    "arm_b": b,
                    "n_a": len(err[a]),
                    "n_b": len(err[b]),
                    "mean_a": ma,
                    "std_a": sa,
                    "ci_low_a": loa,
                    "ci_high_a": hia,
                    "mean_b": mb,
                    "std_b": sb,
                    "ci_low_b": lob,
                    "ci_high_b": hib,
                    "diff": ma - mb,
                    **_two_sample(err[a], err[b]),
                }
            )
    df = pd.DataFrame(rows)
    if len(df):
        df["p_welch_holm"] = holm(df["p_welch"])
        df["p_mannwhitney_holm"] = holm(df["p_mannwhitney"])
    return df


def paired_table(runs: pd.DataFrame, n_resamples: int, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Across targets: fine-tuned vs each scratch regime, the long-base control vs Scratch-B and uniform vs
    guided, paired by (target, seed) (Wilcoxon signed-rank); ``mean_diff`` > 0 favours the second arm."""
    piv = runs[runs["arm"].isin(TARGETED)].pivot_table(index=["budget", "seed"], columns="arm", values="test_error")
    rows = []
    for worse, better in PAIRED:
        if better not in piv or worse not in piv:
            continue
        pair = piv[[worse, better]].dropna()
        d = (pair[worse] - pair[better]).to_numpy()  # > 0: the second arm has lower error
        p = float(stats.wilcoxon(d).pvalue) if len(d) >= 2 and np.any(d != 0) else float("nan")
        lo, hi = bootstrap_ci(d, n_resamples, seed)
        rows.append(
            {
                "comparison": f"{worse} - {better}",
                "n_pairs": len(d),
                "mean_diff": float(d.mean()),
                "ci_low": lo,
                "ci_high": hi,
                "p_wilcoxon": p,
            }
        )
    df = pd.DataFrame(rows, columns=PAIRED_COLUMNS)
    df["p_wilcoxon_holm"] = holm(df["p_wilcoxon"])
    return df


def bootstrap_ci(
    x: np.ndarray, n_resamples: int, seed: int = BOOTSTRAP_SEED, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (scipy.stats.bootstrap).

    Fewer than 3 values give nan bounds: resampling two numbers only returns their range, which would
    pass for a confidence interval without being one.
    """
    x = np.asarray(x)
    if len(x) < 3:
        return float("nan"), float("nan")
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def family_curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Label every network with the family whose curve it belongs to."""
    out = runs[runs["arm"].isin(list(CURVES))].copy()
    out["family"] = out["arm"].map(CURVES)
    return out


def interpolate(curves: pd.DataFrame, grid_points: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Each (family, seed) curve's error at common log-param points, inside the range all curves share."""
    groups = {k: g.sort_values("params") for k, g in curves.groupby(["family", "seed"]) if len(g) >= 2}
    lo = max((np.log(g["params"].min()) for g in groups.values()), default=np.inf)
    hi = min((np.log(g["params"].max()) for g in groups.values()), default=-np.inf)
    if lo >= hi:  # no curve of two points, or curves that share no range (or only one point)
        return pd.DataFrame(columns=INTERP_COLUMNS), np.array([])
    grid = np.linspace(lo, hi, grid_points)
    rows = []
    for (family, seed), g in groups.items():
        err = np.interp(grid, np.log(g["params"].to_numpy(float)), g["test_error"].to_numpy(float))
        rows += [(family, seed, float(np.exp(x)), e) for x, e in zip(grid, err, strict=True)]
    return pd.DataFrame(rows, columns=INTERP_COLUMNS), np.exp(grid)


FAMILY_COLUMNS = (
    "family_a",
    "family_b",
    "n_seeds",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_t",
    "params_low",
    "params_high",
)


def family_table(runs: pd.DataFrame, grid_points: int, n_resamples: int, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Every pair of families: mean error difference over the shared grid, per seed, with a bootstrap CI."""
    interp, _ = interpolate(family_curves(runs), grid_points)
    rows = []
    per_seed = interp.groupby(["family", "seed"])["error"].mean().unstack("family")
    for a, b in combinations(sorted(per_seed.columns), 2):
        d = (per_seed[a] - per_seed[b]).dropna().to_numpy()  # < 0: family a has lower error
        p = float(stats.ttest_1samp(d, 0.0).pvalue) if len(d) >= 2 and np.ptp(d) > 0 else float("nan")
        lo, hi = bootstrap_ci(d, n_resamples, seed)
        rows.append(
            {
                "family_a": a,
                "family_b": b,
                "n_seeds": len(d),
                "mean_diff": float(d.mean()) if len(d) else float("nan"),
                "ci_low": lo,
                "ci_high": hi,
                "p_t": p,
                "params_low": float(interp["params"].min()),
                "params_high": float(interp["params"].max()),
            }
        )
    df = pd.DataFrame(rows, columns=FAMILY_COLUMNS)
    df["p_t_holm"] = holm(df["p_t"])
    return df
