import pytest

from prunestudy.arch import densenet, wrn
from prunestudy.io.config import member_spec
from prunestudy.pruning.arms import plan
from prunestudy.pruning.budgets import first_step_at_or_below, scale_to_params, scratch_b_epochs
from prunestudy.training.recipe import Recipe


def test_scratch_b_epochs_arithmetic_and_cap():
    assert scratch_b_epochs(160, 400, 100, None) == 640  # Liu's CIFAR code: uncapped
    assert scratch_b_epochs(160, 400, 100, 2) == 320
    assert scratch_b_epochs(10, 300, 200, 2) == 15
    assert scratch_b_epochs(160, 100, 100, 2) == 160  # nothing pruned: Scratch-E's epochs (with a warning)


def test_scratch_b_takes_the_ratio_from_the_pruned_spec():
    base = wrn(16, 2)
    pruned = base.with_widths([m // 4 for m in base.mids])
    recipe = Recipe(epochs=20, batch_size=8, lr=0.1, milestones=(10, 15))
    p = plan("scratch-B", base, recipe, arch=pruned, max_factor=None)
    assert p.recipe.epochs == int(20 * base.flops() / pruned.flops())
    assert p.recipe.epochs > 20 and p.recipe.milestones == (
        int(10 * p.recipe.epochs / 20),
        int(15 * p.recipe.epochs / 20),
    )
    assert p.spec == pruned
    e = plan("scratch-E", base, recipe, arch=pruned)
    assert e.recipe == recipe and e.spec == pruned


def test_family_members_from_the_model_options():
    data = {"name": "cifar10"}
    wrn40 = {"family": "wrn", "depth": 40, "width": 2}
    assert member_spec(wrn40, data, "width", 1).param_count() == 563_930  # the reference code's WRN-40-1
    assert member_spec(wrn40, data, "bottleneck", 0.5).param_count() == 1_129_370  # WRN-40-2 Z=0.5
    bc100 = {"family": "densenet", "depth": 100, "bc": True}
    assert member_spec(bc100, data, "bottleneck", 0.25).param_count() == 261_130  # DenseNet-BC-100 Z=0.25
    assert densenet(100, bc=True).param_count() == 769_162


@pytest.mark.parametrize("fraction", [0.1, 0.3, 1.5])
def test_linear_scaling_lands_within_one_percent(fraction):
    base = wrn(16, 2)
    source = base.with_widths([m // (i + 2) for i, m in enumerate(base.mids)])
    target = round(fraction * base.param_count())
    spec, factor = scale_to_params(source, target)
    assert abs(spec.param_count() - target) <= 0.01 * target
    assert all(abs(m - s * factor) < 1 for m, s in zip(spec.mids, source.mids, strict=True))


@pytest.mark.parametrize("mids", [(5, 20, 90), (2, 10, 100)])
def test_scaling_a_small_network_rounds_each_block_to_reach_the_target(mids):
    """On WRN-10-2 one stage-3 channel is 5% of the target, so one rounding for every block misses 1%."""
    base = wrn(10, 2, in_channels=1, image_size=8)
    source, target = base.with_widths(mids), round(0.15 * base.param_count())
    spec, factor = scale_to_params(source, target)
    assert abs(source.scaled(factor).param_count() - target) > 0.01 * target
    assert abs(spec.param_count() - target) <= 0.01 * target


def test_an_unreachable_target_keeps_the_closest_member_and_warns(caplog):
    source = wrn(10, 2, in_channels=1, image_size=8).with_widths((0, 0, 1))
    target = source.param_count() + 1000  # one more channel of the only mid adds 1730 params
    with caplog.at_level("WARNING", logger="prunestudy"):
        spec, _ = scale_to_params(source, target)
    assert spec.mids == (0, 0, 2) and "from the target" in caplog.text  # 730 params off beats 1000


def test_first_step_at_or_below():
    assert first_step_at_or_below([100, 80, 60, 40], 60) == 2
    assert first_step_at_or_below([100, 80, 60, 40], 79.9) == 2
    with pytest.raises(ValueError, match="never reaches"):
        first_step_at_or_below([100, 80], 50)


def test_scratch_b_truncates_the_epochs_and_floors_the_cap():
    from prunestudy.pruning.budgets import longest_scratch_b

    assert scratch_b_epochs(10, 135, 100, None) == 13  # 13.5 truncates, as Liu's int()
    assert scratch_b_epochs(10, 125, 100, None) == 12  # 12.5 truncates
    assert scratch_b_epochs(10, 1301, 1000, None) == 13  # 13.01 truncates
    assert scratch_b_epochs(15, 400, 100, 1.5) == 22  # the cap 1.5 x 15 = 22.5 floors to 22
    assert scratch_b_epochs(15, 101, 100, 1.5) == 15  # under the cap: int(15.15)
    # the blog's control trains as long as the longest Scratch-B: the smallest pruned network's
    assert longest_scratch_b(10, 400, [300, 100, 200], None) == 40
    assert longest_scratch_b(10, 400, [300, 100, 200], 2) == 20


def test_scaling_keeps_removed_groups_removed_and_every_other_group_at_least_one_channel():
    base = wrn(10, 2, in_channels=1, image_size=8)
    source = base.with_widths((0, 20, 40))
    tiny, _ = scale_to_params(source, round(0.01 * base.param_count()))
    assert tiny.mids[0] == 0 and min(tiny.mids[1:]) >= 1
    with pytest.raises(ValueError, match="cannot scale"):
        scale_to_params(source, 10**12)


def test_the_error_for_a_short_trajectory_says_where_it_ends():
    with pytest.raises(ValueError, match=r"reaches 50 params.*ends at 80"):
        first_step_at_or_below([100, 80], 50)
    assert first_step_at_or_below([100, 80, 60], 100) == 0


def test_the_warning_for_a_near_miss_names_the_source_and_how_far_it_lands(caplog):
    source = wrn(10, 2, in_channels=1, image_size=8).with_widths((0, 0, 1))
    target = source.param_count() + 1000
    with caplog.at_level("WARNING", logger="prunestudy"):
        spec, _ = scale_to_params(source, target)
    gap = abs(spec.param_count() - target)
    assert [r.getMessage() for r in caplog.records] == [
        f"scaling {source.spec_id}: the closest member has {spec.param_count()} params, "
        f"{100 * gap / target:.1f}% from the target {target}"
    ]


def test_a_member_within_tolerance_logs_nothing_and_a_large_factor_is_reached(caplog):
    source = wrn(10, 2, in_channels=1, image_size=8).with_widths((1, 1, 1))
    target = round(0.3 * wrn(10, 2, in_channels=1, image_size=8).param_count())
    with caplog.at_level("WARNING", logger="prunestudy"):
        spec, _ = scale_to_params(source, target)
    assert caplog.records == [] and abs(spec.param_count() - target) <= 0.01 * target
    # a factor between 729 and 1024 is still searched (the doubling stops only past 1024)
    wide = wrn(10, 2, in_channels=1, image_size=8).with_widths((800, 800, 800))
    spec, factor = scale_to_params(source, wide.param_count())
    assert 729 < factor <= 1024 and abs(spec.param_count() - wide.param_count()) <= 0.01 * wide.param_count()


def test_the_short_trajectory_error_says_what_to_change():
    with pytest.raises(ValueError, match=r"ends at 80\); raise prune.max_prunes or lower prune.param_floor$"):
        first_step_at_or_below([100, 90, 80], 50)


def test_a_member_exactly_at_the_tolerance_counts_as_within_it(caplog):
    source = wrn(10, 2, in_channels=1, image_size=8).with_widths((0, 0, 1))
    target = source.param_count() + 1000
    spec, _ = scale_to_params(source, target)  # the closest member, 730 params off
    tol = abs(spec.param_count() - target) / target
    assert tol * target == abs(spec.param_count() - target)  # exactly, in floating point
    caplog.clear()
    with caplog.at_level("WARNING", logger="prunestudy"):
        assert scale_to_params(source, target, tol=tol)[0] == spec
    assert caplog.records == []
