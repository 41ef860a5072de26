import numpy as np
import pandas as pd
import pytest

from prunestudy.analysis import stats
from prunestudy.analysis.claims import comparisons


def _arms(shift: float, n_seeds: int = 6, targets=(0.2, 0.5), noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """Synthetic runs: scratch arms are ``shift`` lower in error than the tuned arm."""
    rng = np.random.default_rng(seed)
    rows = []
    for b in targets:
        for s in range(n_seeds):
            base = 0.05 + rng.normal(0, noise)
            rows.append(
                {"arm": "pruned", "seed": s, "target": b, "member": None, "params": 1000 * b, "test_error": base}
            )
            for arm in ("scratch-E", "scratch-B"):
                rows.append(
                    {
                        "arm": arm,
                        "seed": s,
                        "target": b,
                        "member": None,
                        "params": 1000 * b,
                        "test_error": base - shift + rng.normal(0, noise),
                    }
                )
    return pd.DataFrame(rows)


def test_identical_groups_are_not_called_different():
    runs = _arms(shift=0.0)
    table = stats.target_table(runs)
    assert (table["p_welch_holm"] > 0.05).all() and (table["p_mannwhitney_holm"] > 0.05).all()
    paired = stats.paired_table(runs, comparisons())
    assert ((paired["ci_low"] < 0) & (paired["ci_high"] > 0)).all()


def test_clearly_shifted_groups_are():
    runs = _arms(shift=0.02)
    table = stats.target_table(runs)
    tuned_vs = table[table["arm_a"] == "pruned"]
    assert (tuned_vs["p_welch_holm"] < 0.01).all() and (tuned_vs["diff"] > 0.015).all()
    assert (tuned_vs["hedges_g"] > 3).all()
    paired = stats.paired_table(runs, comparisons())
    assert len(paired) == 4 and (paired["n_seeds"] == 6).all()  # two comparisons at two targets
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


def _family(name_arm, params, errors, seeds=range(5), noise=0.001):
    rng = np.random.default_rng(len(name_arm))
    return [
        {"arm": name_arm, "seed": s, "target": None, "member": p, "params": p, "test_error": e + rng.normal(0, noise)}
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
    table = stats.family_table(runs, grid_points=4)
    row = table[(table["family_a"] == "scaled") & (table["family_b"] == "width")].iloc[0]
    assert row["mean_diff"] == pytest.approx(0.02, abs=0.002)
    assert not row["paired"] and row["ci_low"] > 0.015
    assert set(interp["family"]) == {"width", "bottleneck", "scaled"}


def test_references_sit_beside_reproduced_numbers_only_when_dataset_model_method_and_target_match(tmp_path):
    from prunestudy.analysis.tables import references_table

    (tmp_path / "refs.yaml").write_text(
        "references:\n"
        "  - {paper: P, dataset: cifar10, model: WRN-40-2, method: fisher, arm: base, error_pct: 5.0, verified: false,"
        " source: s}\n"
        "  - {paper: P, dataset: imagenet, model: ResNet-34, arm: pruned, error_pct: 27.4, verified: true, source: s}\n"
        "  - {paper: P, dataset: cifar10, model: WRN-40-2, method: fisher, arm: pruned, target: 0.5, error_pct: 9,"
        " verified: false, source: s}\n"
        "  - {paper: P, dataset: cifar10, model: WRN-40-2, method: fisher, arm: pruned, target: 0.3, error_pct: 9,"
        " verified: false, source: s}\n"
    )
    runs = pd.DataFrame(
        {
            "arm": ["base", "base", "pruned"],
            "target": [None, None, 0.5],
            "test_error": [0.04, 0.06, 0.2],
            "val_error": [0.05, 0.05, 0.2],
            "best_val_error": [0.04, 0.05, None],  # the first base run's validation error was 1 pp lower once
        }
    )
    table = references_table(tmp_path / "refs.yaml", runs, "cifar10", "WRN-40-2", "fisher")
    assert table.loc[0, "reproduced_error_pct"] == pytest.approx(5.0) and table.loc[0, "reproduced_n"] == 2
    assert table.loc[0, "reproduced_best_epoch_pct"] == pytest.approx(4.5)  # (3 + 6) / 2
    assert pd.isna(table.loc[2, "reproduced_best_epoch_pct"])  # no per-epoch validation: no estimate
    assert pd.isna(table.loc[1, "reproduced_error_pct"]) and table.loc[1, "reproduced_n"] == 0
    assert table.loc[2, "reproduced_error_pct"] == pytest.approx(20.0) and table.loc[3, "reproduced_n"] == 0
    assert not references_table(tmp_path / "refs.yaml", runs, "digits", "WRN-10-2", "fisher")["reproduced_n"].any()
    assert not references_table(tmp_path / "refs.yaml", runs, "cifar10", "WRN-40-2", "l1")["reproduced_n"].any()


def test_family_table_with_a_single_curve_of_two_points_is_empty_not_an_error():
    """One target and two width members: only the width curve has two points, so nothing is compared."""
    runs = pd.DataFrame(
        {
            "arm": ["pruned", "width", "width"],
            "seed": [1, 1, 1],
            "target": [0.5, None, None],
            "member": [None, 1.0, 2.0],
            "params": [500, 400, 900],
            "test_error": [0.1, 0.12, 0.08],
        }
    )
    table = stats.family_table(runs, grid_points=3)
    assert table.empty and list(table.columns) == list(stats.FAMILY_COLUMNS)
