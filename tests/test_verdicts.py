"""The decision procedure by value: tests against scipy and statsmodels, the rule at every boundary, the claims table.

Each boundary is tried on both sides: of the margin (the threshold a claim's effect must exceed) and of alpha
(the corrected p-value that decides), so that a rule that used the margin one way only, or a correction that
missed a route, fails here.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower

from prunestudy.analysis import verdicts as v
from prunestudy.analysis.claims import CLAIMS, COLUMNS, applicable, claims_table, note
from prunestudy.pruning.arms import trained_arms


def test_thresholds_use_the_margin_in_both_directions():
    assert v.threshold("matches_or_beats", 0.005) == -0.005
    assert v.threshold("beats", 0.005) == 0.005
    with pytest.raises(ValueError, match="unknown claim kind"):
        v.threshold("equals", 0.005)


def test_paired_evidence_is_the_one_sample_t_on_the_seed_differences():
    w, b = np.array([0.12, 0.15, 0.11, 0.16]), np.array([0.10, 0.12, 0.11, 0.12])
    ev = v.paired_evidence(w, b, resolution=0.0)
    p_claim, p_opposite = v.one_sided(ev, np.array(0.005))
    ref = stats.ttest_1samp(w - b - 0.005, 0.0, alternative="greater")
    assert p_claim == pytest.approx(ref.pvalue) and p_opposite == pytest.approx(1 - ref.pvalue)
    assert (ev.n, ev.df, ev.estimate) == (4, 3, pytest.approx(0.0225))
    assert ev.sd == pytest.approx(np.std(w - b, ddof=1))


def test_welch_evidence_is_scipys_welch_test():
    w, b = np.array([0.12, 0.15, 0.11]), np.array([0.10, 0.12, 0.11, 0.09, 0.13])
    ev = v.welch_evidence(w, b, resolution=0.0)
    ref = stats.ttest_ind(w, b + 0.005, equal_var=False, alternative="greater")
    assert v.one_sided(ev, np.array(0.005))[0] == pytest.approx(ref.pvalue)
    assert ev.df == pytest.approx(ref.df) and ev.n == 3
    assert ev.sd == pytest.approx(math.sqrt(np.var(w, ddof=1) + np.var(b, ddof=1)))


@pytest.mark.filterwarnings("error")  # the floor, not a division by zero numpy warned about
def test_a_spread_below_one_test_image_is_raised_to_it():
    """Three seeds whose errors differ by exactly one image each: the sample SD is 0, the floor 1/450."""
    w, b = np.full(3, 0.1 + 1 / 450), np.full(3, 0.1)
    ev = v.paired_evidence(w, b, resolution=1 / 450)
    assert ev.sd == pytest.approx(1 / 450) and ev.se == pytest.approx(1 / 450 / math.sqrt(3))
    # without the floor the same data would be "certain": t infinite, p zero
    p_claim, _ = v.one_sided(ev, np.array(-0.005))
    assert p_claim == pytest.approx(stats.t.sf((1 / 450 + 0.005) / (1 / 450 / math.sqrt(3)), 2))
    assert 0 < p_claim < 0.05


@pytest.mark.filterwarnings("error")
def test_one_seed_gives_no_test_and_an_inconclusive_verdict():
    ev = v.paired_evidence(np.array([[0.2, np.nan, np.nan]]), np.array([[0.1, np.nan, np.nan]]), 0.001)
    d = v.decide(ev, np.array([-0.005]), 0.05)
    assert ev.n[0] == 1 and math.isnan(d.p[0]) and d.verdict[0] == "inconclusive"


def test_holm_matches_statsmodels_along_the_last_axis_and_skips_nan():
    p = np.random.default_rng(0).uniform(0, 0.2, size=(4, 9))
    p[1, 3] = np.nan
    got = v.holm(p)
    for row, adjusted in zip(p, got, strict=True):
        ok = ~np.isnan(row)
        assert adjusted[ok] == pytest.approx(multipletests(row[ok], method="holm")[1])
        assert np.isnan(adjusted[~ok]).all()


def test_both_directions_of_every_claim_are_in_one_holm_family():
    """Two claims: four one-sided hypotheses; the smallest p is multiplied by 4, not 2."""
    h_claim, h_opposite = v.directional_holm(np.array([0.01, 0.3]), np.array([0.99, 0.7]))
    assert h_claim[0] == pytest.approx(0.04) and h_claim[1] == pytest.approx(0.9)
    assert h_opposite == pytest.approx([1.0, 1.0])


def _decide(estimate, se, df, theta=-0.005, alpha=0.05):
    """One claim with the given evidence, alone in its family (Holm over its two one-sided tests)."""
    ev = v.Evidence(np.array([estimate]), np.array([se]), np.array([df]), np.array([df + 1]), np.array([se]))
    return v.decide(ev, np.array([theta]), alpha)


def _estimate_at(p: float, se: float, df: float, theta: float, side: int) -> float:
    """The estimate whose one-sided p-value, beyond ``theta`` on ``side`` (+1 above, -1 below), is ``p``."""
    return theta + side * stats.t.isf(p, df) * se


@pytest.mark.parametrize("theta", [-0.005, 0.005], ids=["matches_or_beats", "beats"])
def test_the_verdict_on_each_side_of_the_threshold_and_of_alpha(theta):
    se, df = 0.002, 9
    # raw one-sided p = .024 -> Holm over two hypotheses .048 < .05: decisive; .026 -> .052: inconclusive
    above, below = (_estimate_at(p, se, df, theta, +1) for p in (0.024, 0.026))
    assert _decide(above, se, df, theta).verdict[0] == "supported"
    assert _decide(below, se, df, theta).verdict[0] == "inconclusive"
    assert _decide(above, se, df, theta).p_holm[0] == pytest.approx(0.048)
    under, over = (_estimate_at(p, se, df, theta, -1) for p in (0.024, 0.026))
    assert _decide(under, se, df, theta).verdict[0] == "contradicted"
    assert _decide(over, se, df, theta).verdict[0] == "inconclusive"
    # the same estimate, on the threshold: never decisive
    assert _decide(theta, se, df, theta).verdict[0] == "inconclusive"


def test_contradiction_is_judged_against_the_margin_not_against_zero():
    """A Scratch-E 0.25 pp worse lies inside the 0.5 pp margin: however precise, never contradicted; a 0.75 pp
    deficit, measured as precisely, is."""
    assert _decide(-0.0025, 0.0001, 20).verdict[0] == "supported"
    assert _decide(-0.0075, 0.0001, 20).verdict[0] == "contradicted"


def test_a_beats_claim_is_contradicted_when_the_gain_is_shown_to_be_below_the_margin():
    assert _decide(0.001, 0.0001, 20, theta=0.005).verdict[0] == "contradicted"
    assert _decide(0.009, 0.0001, 20, theta=0.005).verdict[0] == "supported"


def test_the_simultaneous_interval_is_bonferroni_over_the_claims():
    ev = v.Evidence(np.array([0.01, 0.0]), np.array([0.002, 0.003]), np.array([4.0, 9.0]), np.array([5, 10]), None)
    lo, hi = v.simultaneous_interval(ev, 0.05, m=2)
    assert hi[0] - 0.01 == pytest.approx(stats.t.ppf(1 - 0.05 / 4, 4) * 0.002) == pytest.approx(0.01 - lo[0])
    # wholly above the threshold -> decisive (Holm rejects whatever Bonferroni does)
    d = v.decide(ev, np.array([-0.005, -0.005]), 0.05)
    assert d.ci_low[0] > -0.005 and d.verdict[0] == "supported"


def test_power_is_statsmodels_noncentral_t_power():
    level = 0.05 / 36
    for n in (3, 5, 10):
        assert v.power(0.01, 0.01, n, level, paired=True) == pytest.approx(
            TTestPower().power(1.0, n, level, alternative="larger")
        )
        # unpaired: the SD of one seed's difference is sqrt(2) x the per-arm SD
        assert v.power(0.01, 0.01 * math.sqrt(2), n, level, paired=False) == pytest.approx(
            TTestIndPower().power(1.0, n, level, ratio=1.0, alternative="larger")
        )


def test_seeds_needed_is_the_first_seed_count_with_80_percent_power():
    level = 0.05 / 36
    n = v.seeds_needed(0.015, 0.01, level, paired=True)
    assert TTestPower().power(1.5, n, level, alternative="larger") >= 0.8
    assert TTestPower().power(1.5, n - 1, level, alternative="larger") < 0.8
    assert math.isnan(v.seeds_needed(0.0, 0.01, level, True))  # on its threshold: no number of seeds decides it
    assert math.isnan(v.seeds_needed(1e-6, 0.01, level, True, most=50))


def _units(worse_by_seed, better_by_seed, pair=("pruned", "scratch-E"), paired=True):
    return pd.DataFrame(
        [(*pair, s, w, b, paired) for s, (w, b) in enumerate(zip(worse_by_seed, better_by_seed, strict=True), 1)],
        columns=["worse", "better", "seed", "worse_error", "better_error", "paired"],
    )


PLAIN = {"base", "pruned", "scratch-E", "scratch-B"}


def test_a_claim_applies_where_both_its_arms_are_trained_and_crowleys_only_with_a_family():
    ids = [c.id for c in applicable(PLAIN)]
    assert ids == ["liu-scratch-e", "liu-scratch-b"]
    assert "liu-guided" in [c.id for c in applicable(PLAIN | {"guided", "uniform"})]
    with_width = [c.id for c in applicable(PLAIN | {"width"})]
    assert {"crowley-a-width", "crowley-b-tuned", "crowley-b-width"} <= set(with_width)
    assert "crowley-a-bottleneck" not in with_width and "crowley-c-width" not in with_width


def test_the_trained_arms_come_from_the_experiments_config():
    e = {"guided": True, "guided_layer": False, "lottery": {"lrs": []}, "long_base": False}
    e["families"] = {"width": [1.0], "bottleneck": [], "scaled": {"targets": []}}
    assert trained_arms(e) == PLAIN | {"guided", "uniform", "width"}


def test_claims_table_decides_every_claim_of_the_study_together():
    good = _units([0.12, 0.13, 0.125, 0.128, 0.122], [0.10, 0.11, 0.104, 0.107, 0.101])  # about 2 pp better
    units = pd.concat([good, _units([0.10] * 5, [0.10] * 5, ("pruned", "scratch-B"))])
    table = claims_table({"a": (PLAIN, units), "b": (PLAIN, units)}, alpha=0.05, margin=0.005, resolution=1e-4)
    assert list(table.columns) == list(COLUMNS) and len(table) == 4
    row = table.iloc[0]
    assert (row["experiment"], row["claim"], row["n_seeds"], row["threshold_pp"]) == ("a", "liu-scratch-e", 5, -0.5)
    diffs = np.array([0.02, 0.02, 0.021, 0.021, 0.021])
    assert row["effect_pp"] == pytest.approx(100 * diffs.mean())
    p = stats.ttest_1samp(diffs + 0.005, 0, alternative="greater").pvalue
    assert row["p"] == pytest.approx(p)
    flat = table.iloc[1]  # Scratch-B equal to the tuned network: its SD is the floor, 0.01 pp
    assert flat["effect_pp"] == 0 and flat["sd_pp"] == pytest.approx(0.01)
    p_flat = stats.t.sf(0.005 / (1e-4 / math.sqrt(5)), 4)
    # eight one-sided hypotheses in the study (two claims, two directions, two experiments), Holm over all
    everything = [p, p_flat, p, p_flat, 1 - p, 1 - p_flat, 1 - p, 1 - p_flat]
    assert table["p_holm"].tolist() == pytest.approx(multipletests(everything, method="holm")[1][:4].tolist())
    assert (table["verdict"] == "supported").all()
    by_id = {c.id: c for c in CLAIMS}
    assert all(r.statement == by_id[r.claim].text and r.kind == by_id[r.claim].kind for r in table.itertuples())


def test_claims_table_refuses_units_that_lack_a_trained_comparison():
    with pytest.raises(ValueError, match="liu-scratch-b"):
        claims_table({"a": (PLAIN, _units([0.1, 0.2], [0.1, 0.2]))}, 0.05, 0.005, 1e-4)


def test_an_experiment_that_tests_no_claim_gives_an_empty_table_with_every_column():
    table = claims_table({"a": ({"base"}, _units([], []))}, 0.05, 0.005, 1e-3)
    assert table.empty and list(table.columns) == list(COLUMNS)


def test_the_note_says_how_many_seeds_would_decide_it():
    assert note("inconclusive", 3, 11.0) == "inconclusive with 3 seeds; about 11 would decide it"
    assert note("supported", 5, 4.0) == "supported with 5 seeds"
    assert "no number of seeds" in note("inconclusive", 3, float("nan"))
