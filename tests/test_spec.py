import pytest
import torch

from prunestudy.arch import WRNSpec, spec_from_json, wrn
from tests.conftest import tiny_spec

# Learnable parameters of the reference model code (pytorch-prunes), re-derived by layer arithmetic.
PUBLISHED = {
    (40, 2, 1.0): (2_243_546, 1344),
    (40, 1, 1.0): (563_930, 672),
    (16, 2, 1.0): (691_674, 448),
    (40, 1.5, 1.0): (1_264_410, 1008),
    (28, 2, 1.0): (1_467_610, 896),
    (40, 2, 0.5): (1_129_370, 672),
    (40, 2, 0.25): (572_282, 336),
}


@pytest.mark.parametrize(("key", "expected"), PUBLISHED.items())
def test_param_counts_match_study(key, expected):
    depth, k, z = key
    spec = wrn(depth, k, bottleneck=z)
    assert (spec.param_count(), spec.prunable_channels) == expected


def test_param_count_is_the_built_modules_learnable_params():
    spec = wrn(16, 2)
    model = spec.build()
    assert spec.param_count() == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_flops_match_reference_counters():
    # WRN-28-10 at 32x32, dense vs mid channels halved (2 FLOPs per multiply-add; fvcore, ptflops agree).
    dense = wrn(28, 10)
    assert dense.flops() == 10_486_657_536
    assert dense.with_widths([m // 2 for m in dense.mids]).flops() == 5_272_613_376
    assert dense.flops() // 2 == 5_243_328_768  # multiply-adds; fvcore/ptflops report this number


def test_json_round_trip_and_stable_id():
    spec = tiny_spec()
    again = spec_from_json(spec.to_json())
    assert again == spec and again.spec_id == spec.spec_id
    assert spec.spec_id == tiny_spec().spec_id
    assert spec.with_widths((3, 4, 4)).spec_id != spec.spec_id


def test_empty_blocks_build_and_run():
    spec = tiny_spec(mids=(0, 0, 2))
    model = spec.build()
    assert not hasattr(model.blocks[0], "conv1")
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert spec.param_count() == sum(p.numel() for p in model.parameters())


def test_scaled_keeps_empty_blocks_empty():
    spec = tiny_spec(mids=(0, 4, 5))
    assert spec.scaled(2.0).mids == (0, 8, 10)
    assert spec.scaled(0.01).mids == (0, 1, 1)


@pytest.mark.parametrize("bad", [dict(depth=12), dict(mids=(1, 2)), dict(mids=(1, -1, 2))])
def test_invalid_specs_are_refused(bad):
    kw = dict(depth=10, widths=(4, 6, 8, 10), mids=(1, 2, 3))
    with pytest.raises(ValueError):
        WRNSpec(**{**kw, **bad})


@pytest.mark.parametrize(("in_channels", "image_size"), [(1, 8), (3, 32), (3, 7)])
def test_counts_equal_the_flop_counter_and_the_built_modules_params(in_channels, image_size):
    import random

    from torch.utils.flop_counter import FlopCounterMode

    rng = random.Random(image_size)
    base = wrn(16, 2, in_channels=in_channels, image_size=image_size)
    specs = [base, wrn(16, 1.5, bottleneck=0.25, in_channels=in_channels, image_size=image_size)]
    specs += [base.with_widths([rng.randint(0, m) for m in base.mids]) for _ in range(4)]  # pruned, some emptied
    for spec in specs:
        with torch.device("meta"):
            model, x = spec.build(), torch.empty(1, in_channels, image_size, image_size)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        assert spec.flops() == counter.get_total_flops()
        assert spec.param_count() == sum(p.numel() for p in model.parameters())
