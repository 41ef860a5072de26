"""Descriptive statistics of one experiment, and the seed-level units its claims are decided on.

Per target, the fine-tuned arm and the two scratch regimes are compared on the same architectures
(Welch's t, Mann-Whitney U, Hedges' g; Holm within the table). Each comparison a claim makes is then
reduced to one number per seed (:func:`units_table`): the seed of the large network is the unit of
replication, and the targets pruned from one large network are repeated measures of it. Arms are
compared per target as description (:func:`paired_table`); families at matched parameter counts, each
seed's error interpolated against log(params) onto a common grid inside the range all curves share
(:func:`family_table`). Decisions are the claims table's alone (:mod:`prunestudy.analysis.claims`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from prunestudy.pruning.arms import CURVES, LOTTERY, PRUNED, RETRAINED, SCRATCH_B, SCRATCH_E, arm_of, targeted

ARM_PAIRS = ((PRUNED, SCRATCH_E), (PRUNED, SCRATCH_B), (SCRATCH_E, SCRATCH_B))
INTERP_COLUMNS = ("family", "seed", "params", "error")
UNIT_COLUMNS = ("worse", "better", "seed", "worse_error", "better_error", "paired")
PAIRED_COLUMNS = ("comparison", "target", "paired", "n_seeds", "mean_diff", "sd", "ci_low", "ci_high")


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
    """Holm-adjusted p-values of a column; NaNs stay NaN and do not count as tests."""
    from prunestudy.analysis.verdicts import holm as holm_array

    return pd.Series(holm_array(p.to_numpy(float)), index=p.index)


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


def target_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per target: each arm's test-error summary and each pair's tests (Holm within the table)."""
    rows = []
    sub = runs[runs["arm"].isin(RETRAINED)]
    for target, g in sub.groupby("target"):
        err = {arm: g.loc[g["arm"] == arm, "test_error"].to_numpy() for arm in RETRAINED}
        for a, b in ARM_PAIRS:
            if not len(err[a]) or not len(err[b]):
                continue
            ma, sa, loa, hia = mean_ci(err[a])
            mb, sb, lob, hib = mean_ci(err[b])
            rows.append(
                {
                    "target": target,
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


def is_paired(worse: str, better: str) -> bool:
    """Whether two arms (or curves) can be paired by seed: only where both retrain the architecture pruned from
    that seed's large network (its tuned network, Scratch-E/B and the lottery arms), the randomness the seed
    fixes for both. Guided, uniform, long-base and family networks share nothing with each other but the
    seed's label."""
    own = {*RETRAINED, *LOTTERY, *(CURVES[a] for a in RETRAINED)}
    return arm_of(worse) in own and arm_of(better) in own


def _targets_by_seed(runs: pd.DataFrame, worse: str, better: str) -> pd.DataFrame | None:
    """(target, seed) rows with both arms' test errors, where both exist; None where an arm was not trained."""
    piv = runs[runs["arm"].map(targeted)].pivot_table(index=["target", "seed"], columns="arm", values="test_error")
    if worse not in piv or better not in piv:
        return None
    return piv[[worse, better]].dropna()


def paired_table(runs: pd.DataFrame, pairs: Sequence[tuple[str, str]], level: float = 0.95) -> pd.DataFrame:
    """Per target, each arm comparison of ``pairs`` (worse, better) that the runs hold: the mean error
    difference over seeds (worse minus better: positive favours the second arm) with a t interval (paired
    where :func:`is_paired`, Welch's otherwise). Description only: a target's seeds are independent, but
    the targets of one seed are not, so the claims are decided on :func:`units_table`."""
    rows = []
    for worse, better in (p for p in pairs if targeted(p[0]) and targeted(p[1])):
        pair = _targets_by_seed(runs, worse, better)
        if pair is None:
            continue
        paired = is_paired(worse, better)
        for target, g in pair.groupby(level="target", sort=True):
            d = (g[worse] - g[better]).to_numpy(float)
            mean, sd, lo, hi = mean_ci(d, level) if paired else _welch_ci(g[worse], g[better], level)
            rows.append((f"{worse} - {better}", target, paired, len(g), mean, sd, lo, hi))
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def _welch_ci(a: pd.Series, b: pd.Series, level: float) -> tuple[float, float, float, float]:
    """Difference of means, the SD of one seed's difference, and Welch's t interval (nan below two each)."""
    a, b = a.to_numpy(float), b.to_numpy(float)
    diff = float(a.mean() - b.mean())
    if min(len(a), len(b)) < 2:
        return diff, float("nan"), float("nan"), float("nan")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return diff, 0.0, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * se
    return diff, float(np.sqrt(a.var(ddof=1) + b.var(ddof=1))), diff - half, diff + half


def units_table(runs: pd.DataFrame, pairs: Sequence[tuple[str, str]], grid_points: int) -> pd.DataFrame:
    """One row per (comparison, seed): each arm's test error reduced to one number per seed, the unit the
    claims are decided on. Arms of one target are averaged over the targets where the seed has both; curves
    over the common grid of matched parameter counts. ``pairs`` are (worse, better); a comparison whose arms
    the runs lack has no rows."""
    per_seed_curves = None
    rows = []
    for worse, better in pairs:
        if targeted(worse) and targeted(better):
            if (pair := _targets_by_seed(runs, worse, better)) is None:
                continue
            pair = pair.groupby(level="seed").mean()
        else:
            if per_seed_curves is None:
                interp, _ = interpolate(family_curves(runs), grid_points)
                per_seed_curves = interp.groupby(["family", "seed"])["error"].mean().unstack("family")
            if worse not in per_seed_curves or better not in per_seed_curves:
                continue
            pair = per_seed_curves[[worse, better]]
        paired = is_paired(worse, better)
        rows += [(worse, better, int(s), r[worse], r[better], paired) for s, r in pair.iterrows()]
    return pd.DataFrame(rows, columns=UNIT_COLUMNS)


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
    "paired",
    "n_seeds",
    "mean_diff",
    "sd",
    "ci_low",
    "ci_high",
    "params_low",
    "params_high",
)


def family_table(runs: pd.DataFrame, grid_points: int, level: float = 0.95) -> pd.DataFrame:
    """Every pair of families at matched parameter counts: the mean error difference over the shared grid
    (family_a minus family_b: negative, a is better), per seed, with a t interval. Description only: the
    claims that compare curves are decided on :func:`units_table`."""
    interp, _ = interpolate(family_curves(runs), grid_points)
    per_seed = interp.groupby(["family", "seed"])["error"].mean().unstack("family")
    rows = []
    for a, b in combinations(sorted(per_seed.columns), 2):
        paired = is_paired(a, b)
        if paired:
            mean, sd, lo, hi = mean_ci((per_seed[a] - per_seed[b]).dropna().to_numpy(float), level)
            n = int((per_seed[a] - per_seed[b]).notna().sum())
        else:
            mean, sd, lo, hi = _welch_ci(per_seed[a].dropna(), per_seed[b].dropna(), level)
            n = int(min(per_seed[a].notna().sum(), per_seed[b].notna().sum()))
        span = (float(interp["params"].min()), float(interp["params"].max()))
        rows.append((a, b, paired, n, mean, sd, lo, hi, *span))
    return pd.DataFrame(rows, columns=FAMILY_COLUMNS)
