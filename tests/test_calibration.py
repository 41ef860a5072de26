"""The verdicts' error rates, measured by simulating studies with the real configs' structure.

Each test fixes the random generator and runs enough simulated studies that the bound it checks is tight:
a rule that used an uncorrected route, the margin one way only, or pairs of (target, seed) as independent
units fails them (the round-2 rule supported a claim at the margin's edge in 16% of studies).
"""

import numpy as np
import pytest
import yaml
from scipy.stats import beta

from prunestudy.analysis import calibration as cal
from prunestudy.io.catalog import count_test_images
from prunestudy.io.config import validate
from tests.conftest import ROOT

ALPHA, MARGIN, SD = 0.05, 0.005, 0.01  # a between-seed SD of the difference of 1 pp


def _design(name: str) -> cal.Design:
    c = validate(yaml.safe_load((ROOT / "config" / name).read_text()))
    return cal.Design.from_config(c["experiments"], MARGIN, count_test_images(c["data"]))


@pytest.fixture(scope="module")
def default():
    return _design("config.yaml")


def _upper(rate: float, studies: int) -> float:
    """The one-sided 95% Clopper-Pearson upper bound of a rate seen in ``studies`` simulations."""
    k = round(rate * studies)
    return 1.0 if k == studies else float(beta.ppf(0.95, k + 1, studies - k))


def test_the_design_is_the_default_configs_holm_family(default):
    # wrn-fisher 9 claims (Liu's two, Crowley's seven), vgg-slimming 3 (with guided), resnet-magnitude 4 (with
    # the lottery claim at two learning rates, paired), resnet-l1 3 (one rate), resnet-sss 2
    assert default.claims == 21 and default.n_test == 449
    assert default.paired.sum() == 14 and list(default.targets[:2]) == [3, 3]
    assert sorted(set(default.theta)) == [-MARGIN, MARGIN]


@pytest.mark.parametrize("n", cal.SEEDS)
def test_a_clearly_false_claim_is_supported_in_at_most_alpha_of_studies(default, n):
    """1 pp beyond the threshold the wrong way, for a paired and for an unpaired claim."""
    for claim in (0, int(np.flatnonzero(~default.paired)[0])):
        got = cal.focal(default, claim, -0.01, SD, n, 4000, seed=n, alpha=ALPHA)["supported"]
        assert _upper(got, 4000) <= ALPHA, (claim, got)


@pytest.mark.parametrize("n", cal.SEEDS)
def test_a_matches_claim_whose_truth_lies_inside_the_margin_is_contradicted_in_at_most_alpha(default, n):
    """Scratch-E truly 0.25 pp worse (half the margin) and truly equal: the claim 'matches' holds."""
    for distance in (MARGIN / 2, MARGIN):
        got = cal.focal(default, 0, distance, SD, n, 4000, seed=10 + n, alpha=ALPHA)["contradicted"]
        assert _upper(got, 4000) <= ALPHA, (distance, got)


@pytest.mark.parametrize("n", cal.SEEDS)
def test_the_family_wise_rate_of_wrong_decisive_verdicts_stays_at_or_below_alpha(default, n):
    """Every claim exactly on its threshold, where both decisive verdicts are wrong (the worst case)."""
    assert cal.family_wise_error(default, SD, n, 20000, seed=20 + n, alpha=ALPHA) <= ALPHA


def test_the_family_wise_rate_holds_for_the_liu_config_too():
    liu = _design("liu.yaml")
    assert liu.claims == 43 and liu.n_test == 10000
    assert cal.family_wise_error(liu, 0.003, 5, 20000, seed=3, alpha=ALPHA) <= ALPHA


@pytest.mark.parametrize("distance", [0.03, -0.03], ids=["beyond", "short"])
def test_with_ten_seeds_each_direction_is_reached_in_at_least_80_percent_of_studies(default, distance):
    """3 pp beyond the margin either way, 1 pp between-seed SD: the right verdict, paired and unpaired."""
    right = "supported" if distance > 0 else "contradicted"
    for claim in (0, int(np.flatnonzero(~default.paired)[0])):
        assert cal.focal(default, claim, distance, SD, 10, 2000, seed=30, alpha=ALPHA)[right] >= 0.8


def test_the_operating_characteristics_rise_on_the_right_side_of_the_threshold(default):
    oc = cal.operating_characteristics(default, SD, ALPHA, 400, distances=(-0.03, 0.0, 0.03), seeds=(10,))
    assert list(oc.columns) == list(cal.OC_COLUMNS) and len(oc) == 3
    assert oc[["supported", "contradicted", "inconclusive"]].sum(axis=1).to_numpy() == pytest.approx(1.0)
    low, mid, high = oc.itertuples()
    assert low.contradicted > 0.8 and high.supported > 0.8 and mid.supported + mid.contradicted <= ALPHA


def test_the_power_table_says_how_many_seeds_a_one_and_a_half_point_effect_needs():
    t = cal.power_table(0.01, ALPHA, 18)
    assert list(t["comparison"]) == ["paired", "unpaired"] and (t["distance_pp"] == 1.5).all()
    assert (t["seeds_for_80pct_power"] >= 3).all()
    assert t["seeds_for_80pct_power"].iloc[1] <= t["seeds_for_80pct_power"].iloc[0] + 1  # more df, unpaired
