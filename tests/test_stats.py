import numpy as np
import pandas as pd
import pytest

from prunestudy.analysis import stats
from prunestudy.analysis.claims import CLAIMS, COLUMNS, claims_table
from prunestudy.analysis.verdicts import verdict


def _arms(shift: float, n_seeds: int = 6, budgets=(0.2, 0.5), noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """Synthetic runs: scratch arms are ``shift`` lower in error than the tuned arm."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in budgets:
        for s in range(n_seeds):
            base = 0.05 + rng.normal(0, noise)
            rows.append(
                {"arm": "pruned", "seed": s, "budget": b, "member": None, "params": 1000 * b, "test_error": base}
            )
            for arm in ("scratch-E", "scratch-B"):
                rows.append(
                    {
                        "arm": arm,
                        "seed": s,
                        "budget": b,
                        "member": None,
                        "params": 1000 * b,
                        "test_error": base - shift + rng.normal(0, noise),
                    }
                )
    return pd.DataFrame(rows)


def test_identical_groups_are_not_called_different():
    runs = _arms(shift=0.0)
    table = stats.budget_table(runs)
    assert (table["p_welch_holm"] > 0.05).all() and (table["p_mannwhitney_holm"] > 0.05).all()
    paired = stats.paired_table(runs, n_resamples=500)
    assert (paired["p_wilcoxon_holm"] > 0.05).all()


def test_clearly_shifted_groups_are():
    runs = _arms(shift=0.02)
    table = stats.budget_table(runs)
    tuned_vs = table[table["arm_a"] == "pruned"]
    assert (tuned_vs["p_welch_holm"] < 0.01).all() and (tuned_vs["diff"] > 0.015).all()
    assert (tuned_vs["hedges_g"] > 3).all()
    paired = stats.paired_table(runs, n_resamples=500)
    assert (paired["p_wilcoxon_holm"] < 0.01).all()
    assert (paired["ci_low"] > 0.015).all() and (paired["ci_high"] < 0.025).all()


def test_mean_ci_and_hedges_g_known_values():
    m, sd, lo, hi = stats.mean_ci(np.array([1.0, 2.0, 3.0]))
    assert (m, sd) == (2.0, 1.0)
    assert hi - m == pytest.approx(4.302652729911275 / np.sqrt(3)) == pytest.approx(m - lo)
    assert stats.hedges_g(np.array([1.0, 2, 3]), np.array([1.0, 2, 3])) == 0
    g = stats.hedges_g(np.array([2.0, 3, 4]), np.array([1.0, 2, 3]))
    assert g == pytest.approx(1.0 * (1 - 3 / (4 * 6 - 9)))


def test_holm_matches_hand_computation():
    p = pd.Series([0.01, 0.04, 0.03, np.nan])
    adj = stats.holm(p)
    assert adj[0] == pytest.approx(0.03) and adj[2] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06)
    assert np.isnan(adj[3])


def test_bootstrap_refuses_two_values():
    assert all(np.isnan(stats.bootstrap_ci(np.array([0.1, 0.2]), n_resamples=500)))


def _family(name_arm, params, errors, seeds=range(5), noise=0.001):
    rng = np.random.default_rng(len(name_arm))
    return [
        {"arm": name_arm, "seed": s, "budget": None, "member": p, "params": p, "test_error": e + rng.normal(0, noise)}
        for s in seeds
        for p, e in zip(params, errors, strict=True)
    ]


def test_family_comparison_finds_the_better_curve_only_inside_the_shared_range():
    params = [1e3, 3e3, 1e4, 3e4]
    runs = pd.DataFrame(
        _family("width", params, [0.10, 0.08, 0.06, 0.05])
        + _family("bottleneck", [2e3, 5e4], [0.08, 0.04])
        + _family("scaled", params, [0.12, 0.10, 0.08, 0.07])
    )
    interp, grid = stats.interpolate(stats.family_curves(runs), 4)
    assert grid.min() == pytest.approx(2e3) and grid.max() == pytest.approx(3e4)
    table = stats.family_table(runs, grid_points=4, n_resamples=500)
    row = table[(table["family_a"] == "scaled") & (table["family_b"] == "width")].iloc[0]
    assert row["mean_diff"] == pytest.approx(0.02, abs=0.002)
    assert row["p_t_holm"] < 0.05 and row["ci_low"] > 0.015
    assert set(interp["family"]) == {"width", "bottleneck", "scaled"}


def test_verdict_rule():
    assert verdict("beats", 0.01, 0.005, 0.001, 0.05, 0.005) == "supported"
    assert verdict("beats", -0.01, -0.02, 0.001, 0.05, 0.005) == "contradicted"
    assert verdict("beats", 0.01, -0.02, 0.3, 0.05, 0.005) == "inconclusive"
    assert verdict("matches_or_beats", -0.001, -0.003, 0.3, 0.05, 0.005) == "supported"
    assert verdict("matches_or_beats", -0.001, -0.03, 0.3, 0.05, 0.005) == "inconclusive"


def test_claims_table_on_shifted_data_supports_liu():
    paired = stats.paired_table(_arms(shift=0.02), n_resamples=500)
    no_families = stats.family_table(
        pd.DataFrame(columns=["arm", "seed", "params", "test_error", "budget", "member"]), 6, n_resamples=500
    )
    claims = claims_table({"e": (paired, no_families)})
    liu = claims.set_index("claim").loc[["liu-scratch-e", "liu-scratch-b"]]
    assert (liu["verdict"] == "supported").all() and (liu["effect_pp"] > 1.5).all()
    # an experiment without families has no row for Crowley's claims (rather than an empty one)
    assert set(claims["claim"]) == {"liu-scratch-e", "liu-scratch-b"}


def test_references_sit_beside_reproduced_numbers_only_when_dataset_model_method_and_target_match(tmp_path):
    from prunestudy.analysis.tables import references_table

    (tmp_path / "refs.yaml").write_text(
        "references:\n"
        "  - {paper: P, dataset: cifar10, model: WRN-40-2, method: fisher, arm: base, error_pct: 5.0, verified: false,"
        " source: s}\n"
        "  - {paper: P, dataset: imagenet, model: ResNet-34, arm: pruned, error_pct: 27.4, verified: true, source: s}\n"
        "  - {paper: P, dataset: cifar10, model: WRN-40-2, method: fisher, arm: pruned, budget: 0.5, error_pct: 9,"
        " verified: false, source: s}\n"
        "  - {paper: P, dataset: cifar10, model: WRN-40-2, method: fisher, arm: pruned, budget: 0.3, error_pct: 9,"
        " verified: false, source: s}\n"
    )
    runs = pd.DataFrame(
        {"arm": ["base", "base", "pruned"], "budget": [None, None, 0.5], "test_error": [0.04, 0.06, 0.2]}
    )
    table = references_table(tmp_path / "refs.yaml", runs, "cifar10", "WRN-40-2", "fisher")
    assert table.loc[0, "reproduced_error_pct"] == pytest.approx(5.0) and table.loc[0, "reproduced_n"] == 2
    assert pd.isna(table.loc[1, "reproduced_error_pct"]) and table.loc[1, "reproduced_n"] == 0
    assert table.loc[2, "reproduced_error_pct"] == pytest.approx(20.0) and table.loc[3, "reproduced_n"] == 0
    assert not references_table(tmp_path / "refs.yaml", runs, "digits", "WRN-10-2", "fisher")["reproduced_n"].any()
    assert not references_table(tmp_path / "refs.yaml", runs, "cifar10", "WRN-40-2", "l1")["reproduced_n"].any()


def test_family_table_with_a_single_curve_of_two_points_is_empty_not_an_error():
    """One budget and two width members: only the width curve has two points, so nothing is compared."""
    runs = pd.DataFrame(
        {
            "arm": ["pruned", "width", "width"],
            "seed": [1, 1, 1],
            "budget": [0.5, None, None],
            "member": [None, 1.0, 2.0],
            "params": [500, 400, 900],
            "test_error": [0.1, 0.12, 0.08],
        }
    )
    table = stats.family_table(runs, grid_points=3, n_resamples=100)
    assert table.empty and {"p_t", "p_t_holm", "family_a"} <= set(table.columns)


def _unrelated_families():
    """An experiment that trains families (so Crowley's claims apply) whose one row no claim reads."""
    return pd.DataFrame(
        {"family_a": ["width"], "family_b": ["bottleneck"], "mean_diff": [0.0], "ci_low": [0.0], "ci_high": [0.0]}
        | {"p_t": [float("nan")]}
    )


def test_claims_on_one_measurement_share_one_holm_test():
    paired = pd.DataFrame(
        {
            "comparison": ["pruned - scratch-E", "pruned - scratch-B"],
            "mean_diff": [0.01, 0.02],
            "ci_low": [0.0, 0.01],
            "ci_high": [0.02, 0.03],
            "p_wilcoxon": [0.02, 0.04],
        }
    )
    table = claims_table({"e": (paired, _unrelated_families())})
    rows = table.set_index("claim")
    # two distinct tests, so Holm multiplies the smaller p by 2, not by 3
    assert rows.loc["liu-scratch-e", "p_holm"] == rows.loc["crowley-b-tuned", "p_holm"] == pytest.approx(0.04)
    assert rows.loc["liu-scratch-b", "p_holm"] == pytest.approx(0.04)
    assert len({frozenset((c.worse, c.better)) for c in CLAIMS}) == len(CLAIMS) - 1


def test_holm_runs_once_over_every_experiment_of_the_study():
    """Two experiments, three distinct comparisons in all (Scratch-E and crowley-b-tuned share one in each)."""

    def paired(p_e, p_b):
        return pd.DataFrame(
            {
                "comparison": ["pruned - scratch-E", "pruned - scratch-B"],
                "mean_diff": [0.01, 0.02],
                "ci_low": [0.0, 0.01],
                "ci_high": [0.02, 0.03],
                "p_wilcoxon": [p_e, p_b],
            }
        )

    fam = _unrelated_families()
    table = claims_table({"a": (paired(0.01, 0.04), fam), "b": (paired(0.02, 0.03), fam)})
    assert list(table["experiment"]) == ["a"] * 3 + ["b"] * 3
    got = table.set_index(["experiment", "claim"])["p_holm"]
    # four tests, sorted p .01 .02 .03 .04 times 4 3 2 1 -> .04 .06 .06 .06 (monotone)
    assert got[("a", "liu-scratch-e")] == got[("a", "crowley-b-tuned")] == pytest.approx(0.04)
    assert got[("b", "liu-scratch-e")] == pytest.approx(0.06)
    assert got[("b", "liu-scratch-b")] == pytest.approx(0.06) and got[("a", "liu-scratch-b")] == pytest.approx(0.06)
    assert list(table.columns) == list(COLUMNS)


def test_the_guided_claim_reads_uniform_minus_guided_from_the_paired_table():
    runs = pd.DataFrame(
        {
            "arm": ["guided"] * 6 + ["uniform"] * 6,
            "budget": [0.4, 0.4, 0.4, 0.6, 0.6, 0.6] * 2,
            "seed": [1, 2, 3] * 4,
            "test_error": [0.10, 0.11, 0.12, 0.13, 0.12, 0.11, 0.12, 0.14, 0.13, 0.16, 0.15, 0.15],
        }
    )
    paired = stats.paired_table(runs, n_resamples=200)
    row = paired.set_index("comparison").loc["uniform - guided"]
    assert row["n_pairs"] == 6 and row["mean_diff"] == pytest.approx(0.16 / 6)
    assert row["p_wilcoxon"] == pytest.approx(0.03125)  # six positive differences, exact two-sided
    claims = claims_table({"e": (paired, pd.DataFrame(columns=["family_a", "family_b"]))}).set_index("claim")
    assert list(claims.index) == ["liu-guided"]
    assert claims.loc["liu-guided", "effect_pp"] == pytest.approx(100 * row["mean_diff"])


def test_crowleys_claims_need_a_trained_family_not_only_the_pruned_curves():
    """Every experiment compares its pruned curves (tuned, Scratch-E, Scratch-B); that is not a family."""
    paired = pd.DataFrame(
        {"comparison": ["pruned - scratch-E"], "mean_diff": [0.01], "ci_low": [0.0], "ci_high": [0.02]}
        | {"p_wilcoxon": [0.02]}
    )
    curves_only = pd.DataFrame(
        {"family_a": ["pruned (scratch-E)"], "family_b": ["pruned (tuned)"], "mean_diff": [-0.01]}
        | {"ci_low": [-0.02], "ci_high": [0.0], "p_t": [0.04]}
    )
    assert list(claims_table({"e": (paired, curves_only)})["claim"]) == ["liu-scratch-e"]
    assert "crowley-b-tuned" in set(claims_table({"e": (paired, _unrelated_families())})["claim"])


def _paired_row(comparison, mean_diff, ci_low, p):
    return {"comparison": comparison, "mean_diff": mean_diff, "ci_low": ci_low, "ci_high": mean_diff + 0.01} | {
        "p_wilcoxon": p
    }


def test_every_claim_row_carries_its_claims_words_and_evidence():
    from prunestudy.pruning.arms import BOTTLENECK, CURVES, PRUNED, SCRATCH_E, WIDTH

    paired = pd.DataFrame([_paired_row(f"{PRUNED} - {SCRATCH_E}", 0.01, 0.0, 0.2)])
    families = pd.DataFrame(
        {"family_a": [BOTTLENECK, WIDTH], "family_b": [CURVES[PRUNED], CURVES[SCRATCH_E]], "mean_diff": 0.01}
        | {"ci_low": 0.0, "ci_high": 0.02, "p_t": 0.3}
    )
    table = claims_table({"e": (paired, families)}).set_index("claim")
    by_id = {c.id: c for c in CLAIMS}
    assert set(table.index) == {"liu-scratch-e", "crowley-b-tuned", "crowley-a-bottleneck", "crowley-b-width"}
    for claim, row in table.iterrows():
        c = by_id[claim]
        assert (row["paper"], row["statement"], row["kind"]) == (c.paper, c.text, c.kind)
    assert table.loc["liu-scratch-e", "evidence"] == "paired Wilcoxon over (target, seed)"
    assert table.loc["crowley-a-bottleneck", "evidence"] == "family curves at matched params (t over seeds)"


def test_default_alpha_and_margin_decide_at_their_boundaries():
    """alpha 0.05 and a 0.5 pp margin: p_holm .06 is not significant, a CI reaching -0.502 pp passes the margin."""
    paired = pd.DataFrame(
        [
            _paired_row("pruned - scratch-E", -0.01, -0.02, 0.03),  # two tests: p_holm .06
            _paired_row("pruned - scratch-B", 0.001, -0.00502, 0.5),
        ]
    )
    t = claims_table({"e": (paired, pd.DataFrame(columns=["family_a", "family_b"]))}).set_index("claim")
    assert t.loc["liu-scratch-e", "p_holm"] == pytest.approx(0.06)
    assert t["verdict"].to_dict() == {"liu-scratch-e": "inconclusive", "liu-scratch-b": "inconclusive"}
    paired.loc[1, "ci_low"] = -0.00498
    t = claims_table({"e": (paired, pd.DataFrame(columns=["family_a", "family_b"]))}).set_index("claim")
    assert t.loc["liu-scratch-b", "verdict"] == "supported"


def test_an_experiment_that_tests_no_claim_gives_an_empty_table_with_every_column():
    empty = stats.paired_table(pd.DataFrame(columns=["arm", "budget", "seed", "test_error"]), n_resamples=500)
    table = claims_table({"e": (empty, pd.DataFrame(columns=["family_a", "family_b"]))})
    assert table.empty and list(table.columns) == list(COLUMNS)
