"""Every column of the statistics tables against values worked out by hand (or closed forms).

These are the tests that fail when a number in a table is wrong, not merely when it is missing.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as scipy_t

from prunestudy.analysis import stats

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom


def _row(arm, target, seed, error, params=500):
    return {"arm": arm, "target": target, "seed": seed, "member": None, "params": params, "test_error": error}


def _budget_runs():
    rows = [_row("pruned", 0.5, s, e) for s, e in zip((1, 2, 3), (0.10, 0.12, 0.14), strict=True)]
    rows += [_row("scratch-E", 0.5, s, e) for s, e in zip((1, 2, 3), (0.07, 0.08, 0.09), strict=True)]
    rows += [_row("scratch-B", 0.5, s, e) for s, e in zip((1, 2, 3), (0.09, 0.11, 0.13), strict=True)]
    rows.append(_row("width", None, 1, 0.5))  # not an arm of one target: never in the table
    return pd.DataFrame(rows)


def test_target_table_every_column_by_hand():
    t = stats.target_table(_budget_runs())
    assert list(zip(t["arm_a"], t["arm_b"], strict=True)) == list(stats.ARM_PAIRS)
    r = t.iloc[0]  # pruned [.10 .12 .14] vs scratch-E [.07 .08 .09]
    assert (r["target"], r["n_a"], r["n_b"]) == (0.5, 3, 3)
    assert (r["mean_a"], r["std_a"], r["mean_b"], r["std_b"]) == pytest.approx((0.12, 0.02, 0.08, 0.01))
    assert (r["ci_low_a"], r["ci_high_a"]) == pytest.approx(
        (0.12 - T_975_DF2 * 0.02 / 3**0.5, 0.12 + T_975_DF2 * 0.02 / 3**0.5)
    )
    assert (r["ci_low_b"], r["ci_high_b"]) == pytest.approx(
        (0.08 - T_975_DF2 * 0.01 / 3**0.5, 0.08 + T_975_DF2 * 0.01 / 3**0.5)
    )
    assert r["diff"] == pytest.approx(0.04)
    # every pruned error above every scratch-E error: U = 9, exact two-sided p = 2 / C(6, 3) = 0.1
    assert r["p_mannwhitney"] == pytest.approx(0.1)
    # Welch by hand: t = .04 / sqrt(.0004/3 + .0001/3), df = (.0005/3)^2 / ((.0004/3)^2/2 + (.0001/3)^2/2)
    t_welch = 0.04 / math.sqrt(0.0005 / 3)
    df = (0.0005 / 3) ** 2 / ((0.0004 / 3) ** 2 / 2 + (0.0001 / 3) ** 2 / 2)
    assert df == pytest.approx(50 / 17)
    assert r["p_welch"] == pytest.approx(2 * scipy_t.sf(t_welch, df))
    # Hedges: pooled sd sqrt((2 x .0004 + 2 x .0001) / 4) = .015811, times (1 - 3 / 15)
    assert r["hedges_g"] == pytest.approx(0.04 / math.sqrt(0.00025) * 0.8)
    last = t.iloc[2]  # scratch-E vs scratch-B
    assert last["diff"] == pytest.approx(0.08 - 0.11) and last["hedges_g"] < 0
    # Holm over the table's three Welch p-values, by hand from the raw ones
    p = sorted(t["p_welch"])
    holm = [min(1, 3 * p[0]), min(1, max(3 * p[0], 2 * p[1])), min(1, max(3 * p[0], 2 * p[1], p[2]))]
    assert sorted(t["p_welch_holm"]) == pytest.approx(holm)
    assert sorted(t["p_mannwhitney_holm"]) == pytest.approx(stats.holm(t["p_mannwhitney"]).sort_values().tolist())


def test_a_pair_with_an_arm_missing_at_one_budget_is_left_out():
    runs = pd.concat([_budget_runs(), pd.DataFrame([_row("pruned", 0.2, 1, 0.3), _row("pruned", 0.2, 2, 0.3)])])
    t = stats.target_table(runs)
    assert set(t["target"]) == {0.5} and len(t) == 3


def test_two_sample_tests_that_cannot_run_say_so_with_nan():
    one = stats._two_sample(np.array([0.1]), np.array([0.1, 0.2]))
    assert math.isnan(one["p_welch"]) and math.isnan(one["p_mannwhitney"]) and math.isnan(one["hedges_g"])
    same = stats._two_sample(np.array([0.1, 0.1]), np.array([0.1, 0.1]))
    assert same["p_welch"] == 1.0 and math.isnan(same["p_mannwhitney"]) and same["hedges_g"] == 0.0
    apart = stats._two_sample(np.array([0.1, 0.1]), np.array([0.2, 0.2]))
    assert math.isnan(apart["p_welch"]) and apart["hedges_g"] == -math.inf
    assert stats.hedges_g(np.array([0.3, 0.3]), np.array([0.2, 0.2])) == math.inf
    assert math.isnan(stats.hedges_g(np.array([0.3, 0.4]), np.array([0.2])))


def test_mean_ci_of_one_value_has_no_spread_and_the_level_sets_the_quantile():
    m, sd, lo, hi = stats.mean_ci(np.array([0.4]))
    assert m == 0.4 and all(math.isnan(v) for v in (sd, lo, hi))
    _, _, lo, hi = stats.mean_ci(np.array([1.0, 2.0, 3.0]), level=0.9)
    assert hi - 2 == pytest.approx(2.919985580355516 / math.sqrt(3)) == pytest.approx(2 - lo)  # t(0.95, 2)


def test_curves_that_share_no_range_are_not_compared():
    rows = [{"arm": "width", "seed": 1, "params": p, "test_error": 0.1} for p in (10, 20)]
    rows += [{"arm": "bottleneck", "seed": 1, "params": p, "test_error": 0.1} for p in (30, 40)]
    interp, grid = stats.interpolate(stats.family_curves(pd.DataFrame(rows)), grid_points=3)
    assert interp.empty and grid.size == 0


def test_mean_ci_of_two_values_uses_one_degree_of_freedom():
    m, sd, lo, hi = stats.mean_ci(np.array([1.0, 3.0]))
    assert (m, sd) == (2.0, pytest.approx(math.sqrt(2)))
    assert hi - 2 == pytest.approx(12.706204736174698 * math.sqrt(2) / math.sqrt(2)) == pytest.approx(2 - lo)


@pytest.mark.filterwarnings("ignore:Precision loss")  # scipy's note on the constant arm
def test_two_values_per_arm_are_enough_for_welch_and_one_constant_arm_does_not_stop_it():
    from scipy.stats import mannwhitneyu, ttest_ind

    two = stats._two_sample(np.array([0.1, 0.2]), np.array([0.3, 0.45]))
    assert two["p_welch"] == pytest.approx(ttest_ind([0.1, 0.2], [0.3, 0.45], equal_var=False).pvalue)
    assert two["p_mannwhitney"] == pytest.approx(mannwhitneyu([0.1, 0.2], [0.3, 0.45]).pvalue)  # U = 0: 2 / C(4,2)
    assert two["p_mannwhitney"] == pytest.approx(1 / 3)
    constant = stats._two_sample(np.array([0.5, 0.5, 0.5]), np.array([0.25, 0.375, 0.75]))
    assert constant["p_welch"] == pytest.approx(ttest_ind([0.5] * 3, [0.25, 0.375, 0.75], equal_var=False).pvalue)
    single = stats._two_sample(np.array([0.1]), np.array([0.1]))  # one network each, the same error
    assert single["p_welch"] == 1.0 and math.isnan(single["p_mannwhitney"])


@pytest.mark.filterwarnings("error")  # nan by rule, not a nan numpy warned about
def test_hedges_g_with_one_value_on_either_side_is_nan_without_a_warning():
    assert math.isnan(stats.hedges_g(np.array([0.3]), np.array([0.2, 0.3, 0.4])))
    assert math.isnan(stats.hedges_g(np.array([0.2, 0.3, 0.4]), np.array([0.3])))


def test_the_scratch_pair_is_compared_where_the_pruned_arm_is_missing():
    runs = _budget_runs()
    t = stats.target_table(runs[runs["arm"] != "pruned"])
    assert list(zip(t["arm_a"], t["arm_b"], strict=True)) == [("scratch-E", "scratch-B")]


def test_holm_keeps_a_float_column_with_nan_where_a_test_did_not_run():
    out = stats.holm(pd.Series([0.01, float("nan"), 0.04]))
    assert out.dtype == float and out.iloc[0] == pytest.approx(0.02) and math.isnan(out.iloc[1])
    assert out.iloc[2] == pytest.approx(0.04)


def _pairs(diffs):
    """Runs where scratch-E beats pruned by ``diffs`` at one target, one seed each."""
    rows = [_row("pruned", 0.5, s, 0.2 + d) for s, d in enumerate(diffs, 1)]
    return pd.DataFrame(rows + [_row("scratch-E", 0.5, s, 0.2) for s in range(1, len(diffs) + 1)])


def test_curves_that_meet_at_one_point_share_no_range():
    runs = pd.DataFrame(
        [
            {"arm": "width", "seed": 1, "target": None, "member": m, "params": p, "test_error": 0.1}
            for m, p in ((1, 100), (2, 200))
        ]
        + [
            {"arm": "bottleneck", "seed": 1, "target": None, "member": m, "params": p, "test_error": 0.1}
            for m, p in ((1, 200), (2, 400))
        ]
    )
    interp, grid = stats.interpolate(stats.family_curves(runs), 4)
    assert interp.empty and list(interp.columns) == list(stats.INTERP_COLUMNS) and len(grid) == 0
    assert stats.family_table(runs, 4).empty


def _family_runs(shifts, bottleneck_seeds=None):
    """Width and bottleneck curves over 100..1000 params; width's error shifted by ``shifts[seed]``."""
    rows = []
    for seed, shift in enumerate(shifts, 1):
        rows += [{"arm": "width", "seed": seed, "params": p, "test_error": 0.3 + shift} for p in (100, 1000)]
    for seed in bottleneck_seeds or range(1, len(shifts) + 1):
        rows += [{"arm": "bottleneck", "seed": seed, "params": p, "test_error": 0.3} for p in (100, 1000)]
    return pd.DataFrame(rows).assign(target=None, member=1.0)


PAIRS = (("pruned", "scratch-E"), ("uniform", "guided"), ("width", "pruned (scratch-E)"), ("bottleneck", "width"))


def test_paired_table_pairs_by_target_and_seed_whatever_the_row_order():
    d = {(0.5, 1): 0.01, (0.5, 2): 0.02, (0.5, 3): 0.03, (0.2, 1): 0.04, (0.2, 2): -0.005}  # pruned minus scratch-E
    rows = [_row("pruned", b, s, 0.2 + i / 100) for i, (b, s) in enumerate(d)]
    rows += [_row("scratch-E", b, s, 0.2 + i / 100 - di) for i, ((b, s), di) in enumerate(d.items())]
    rows.append(_row("scratch-E", 0.2, 3, 0.0))  # no pruned partner: dropped
    t = stats.paired_table(pd.DataFrame(rows).sample(frac=1, random_state=3), PAIRS)
    assert list(zip(t["comparison"], t["target"], strict=True)) == [
        ("pruned - scratch-E", 0.2),
        ("pruned - scratch-E", 0.5),
    ]
    low, high = t.iloc[0], t.iloc[1]
    assert high["paired"] and high["n_seeds"] == 3 and high["mean_diff"] == pytest.approx(0.02)
    assert high["sd"] == pytest.approx(0.01)
    assert (high["ci_low"], high["ci_high"]) == pytest.approx(
        (0.02 - T_975_DF2 * 0.01 / 3**0.5, 0.02 + T_975_DF2 * 0.01 / 3**0.5)
    )
    assert low["n_seeds"] == 2 and low["mean_diff"] == pytest.approx(0.0175)


def test_an_unpaired_comparison_gets_welchs_interval_per_target():
    rows = [_row("guided", 0.4, s, e) for s, e in zip((1, 2, 3), (0.10, 0.11, 0.12), strict=True)]
    rows += [_row("uniform", 0.4, s, e) for s, e in zip((1, 2, 3), (0.12, 0.14, 0.16), strict=True)]
    r = stats.paired_table(pd.DataFrame(rows), PAIRS).iloc[0]
    assert r["comparison"] == "uniform - guided" and not r["paired"]
    assert r["mean_diff"] == pytest.approx(0.03)
    se = math.sqrt(0.0001 / 3 + 0.0004 / 3)
    df = (0.0005 / 3) ** 2 / ((0.0001 / 3) ** 2 / 2 + (0.0004 / 3) ** 2 / 2)
    assert r["ci_high"] - 0.03 == pytest.approx(scipy_t.ppf(0.975, df) * se)
    assert r["sd"] == pytest.approx(math.sqrt(0.0001 + 0.0004))  # the spread of one seed's difference


def test_units_reduce_each_seed_to_its_mean_over_the_targets_it_has_both_arms_at():
    rows = [_row("pruned", b, s, e) for b, s, e in ((0.2, 1, 0.10), (0.5, 1, 0.20), (0.2, 2, 0.30), (0.5, 2, 0.50))]
    rows += [_row("scratch-E", b, s, e) for b, s, e in ((0.2, 1, 0.08), (0.5, 1, 0.16), (0.2, 2, 0.25))]
    u = stats.units_table(pd.DataFrame(rows), PAIRS, grid_points=2)
    assert list(u.columns) == list(stats.UNIT_COLUMNS)
    # seed 2 lacks scratch-E at 0.5: only 0.2 counts, on both sides
    assert u[["seed", "worse_error", "better_error"]].to_numpy().ravel() == pytest.approx(
        [1, 0.15, 0.12, 2, 0.30, 0.25]
    )
    assert u["paired"].all() and set(u["worse"]) == {"pruned"}  # the pairs whose arms were not trained: no rows


def test_curve_units_are_each_seeds_mean_over_the_matched_params_grid():
    # width: error .30 at 100 params, .10 at 10,000 (+ .02 for seed 2); bottleneck .40 at 10, .20 at 1,000
    rows = []
    for seed, shift in ((1, 0.0), (2, 0.02)):
        rows += [
            {"arm": "width", "seed": seed, "params": p, "test_error": e + shift} for p, e in ((100, 0.3), (10_000, 0.1))
        ]
        rows += [{"arm": "bottleneck", "seed": seed, "params": p, "test_error": e} for p, e in ((10, 0.4), (1000, 0.2))]
    runs = pd.DataFrame(rows).assign(target=None, member=1.0)
    interp, grid = stats.interpolate(stats.family_curves(runs), grid_points=2)
    assert grid == pytest.approx([100, 1000])  # the range both curves cover
    at = interp.set_index(["family", "seed", "params"])["error"].sort_index()
    # width at 1000 is halfway in log between 100 and 10,000: .20; bottleneck at 100 halfway: .30
    assert at.loc[("width", 1)].tolist() == pytest.approx([0.3, 0.2])
    assert at.loc[("bottleneck", 1)].tolist() == pytest.approx([0.3, 0.2])
    u = stats.units_table(runs, PAIRS, grid_points=2)
    assert u[["seed", "worse_error", "better_error"]].to_numpy().ravel() == pytest.approx(
        [1, 0.25, 0.25, 2, 0.25, 0.27]
    )
    assert (u["worse"].iloc[0], u["better"].iloc[0], u["paired"].iloc[0]) == ("bottleneck", "width", False)
    t = stats.family_table(runs, grid_points=2).iloc[0]
    assert (t["family_a"], t["family_b"], t["n_seeds"], t["paired"]) == ("bottleneck", "width", 2, False)
    assert t["mean_diff"] == pytest.approx(-0.01) and (t["params_low"], t["params_high"]) == pytest.approx((100, 1000))


def test_only_the_seeds_own_pruned_architectures_are_paired():
    assert stats.is_paired("pruned", "scratch-E") and stats.is_paired("pruned", "scratch-B")
    assert stats.is_paired("pruned (tuned)", "pruned (scratch-B)")
    for a, b in (("uniform", "guided"), ("pruned-long", "scratch-B"), ("width", "pruned (scratch-E)")):
        assert not stats.is_paired(a, b)
