"""Every family's spec: counts against the built module, torch's FLOP counter, fvcore and published numbers."""

import logging
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from prunestudy.arch import FAMILIES, build_spec, densenet, preresnet, resnet, spec_from_json, vgg, wrn

SMALL = {
    "wrn": wrn(16, 1.5),
    "vgg": vgg(cfg=(8, 8, "M", 16, "M", 16, 24)),
    "vgg-a": vgg(cfg=(8, "M", 12, 12, "M", 16), hidden=24),
    "resnet": resnet(20, width=0.5),
    "preresnet-bottleneck": preresnet(20, True),
    "preresnet-basic": preresnet(14, False),
    "densenet": densenet(10, 6),
    "densenet-bc": densenet(16, 6, bc=True),
    "mobilenetv2": build_spec({"family": "mobilenetv2", "width": 0.25}, num_classes=10, in_channels=3, image_size=32),
}


def _random_pruned(spec, rng: random.Random):
    """Keep a random subset of every group; emptiable groups are sometimes emptied."""
    keep = {}
    for g in spec.groups():
        low = 0 if g.emptiable else 1
        n = rng.randint(low, g.width)
        keep[g.name] = sorted(rng.sample(range(g.width), n))
    return spec.kept(keep)


def _torch_counts(spec, size: int):
    with torch.device("meta"):
        model, x = spec.build().eval(), torch.empty(2, spec.in_channels, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() // 2


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize(("in_channels", "size"), [(1, 8), (3, 32)])
def test_counter_equals_module_params_and_torch_flop_counter(name, in_channels, size):
    base = SMALL[name]
    base = type(base).from_dict({**base.to_dict(), "in_channels": in_channels, "image_size": size})
    rng = random.Random(f"{name}{size}")
    for spec in [base, base.scaled(0.5), *(_random_pruned(base, rng) for _ in range(4))]:
        assert (spec.param_count(), spec.flops()) == _torch_counts(spec, size), spec.to_json()


@pytest.mark.parametrize("name", SMALL)
def test_json_round_trip_and_a_family_named_stable_id(name):
    spec = SMALL[name]
    pruned = _random_pruned(spec, random.Random(0))
    for s in (spec, pruned):
        again = spec_from_json(s.to_json())
        assert again == s and again.spec_id == s.spec_id
        assert s.spec_id.startswith(s.family)
    assert pruned.spec_id != spec.spec_id


# DenseNet-BC-100 and its Z rows: the reference model code's counts, re-derived by layer arithmetic
@pytest.mark.parametrize(("z", "params"), [(1.0, 769_162), (0.75, 599_818), (0.5, 430_474), (0.25, 261_130)])
def test_densenet_bc_100_counts_match_study(z, params):
    spec = densenet(100, 12, bc=True, bottleneck=z)
    assert spec.param_count() == params
    if z == 1.0:
        assert sum(g.width for g in spec.groups() if g.name.endswith(".mid")) == 2304


# Published counts of the reference definitions: Li et al. 2017 Table 1/2 (params, MACs), Liu et al. 2019
# and the slimming / DenseNet papers (params), rounded as printed.
PUBLISHED = [
    (vgg("vgg16-a"), 5.40e6, 2.06e8),
    (resnet(56), 0.85e6, 1.25e8),
    (resnet(110), 1.72e6, 2.53e8),
    (vgg("vgg19"), 20.04e6, None),
    (preresnet(164, True), 1.70e6, None),
    (preresnet(110, False), 1.73e6, None),
    (densenet(40, 12), 1.06e6, None),
]


@pytest.mark.parametrize(("spec", "params", "macs"), PUBLISHED, ids=lambda v: getattr(v, "spec_id", ""))
def test_reference_counts_hold_and_fvcore_agrees(spec, params, macs):
    from fvcore.nn import FlopCountAnalysis

    assert spec.param_count() == pytest.approx(params, rel=0.005)  # printed to 3 or 4 figures
    if macs:
        assert spec.flops() // 2 == pytest.approx(macs, rel=0.005)
    logging.disable(logging.WARNING)
    try:
        analysis = FlopCountAnalysis(spec.build().eval(), torch.randn(1, 3, 32, 32))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        ops = analysis.by_operator()
    finally:
        logging.disable(logging.NOTSET)
    assert ops["conv"] + ops["linear"] == spec.flops() // 2  # fvcore counts one flop per multiply-add


def test_the_registry_builds_every_family_from_model_options():
    kw = dict(num_classes=10, in_channels=1, image_size=8)
    for options in (
        {"family": "wrn", "depth": 10, "width": 2},
        {"family": "vgg", "cfg": [8, "M", 16, "M", 32]},
        {"family": "resnet", "depth": 20},
        {"family": "preresnet", "depth": 20, "bottleneck": True},
        {"family": "densenet", "depth": 16, "growth": 6, "bc": True},
    ):
        spec = build_spec(options, **kw)
        assert spec.family == options["family"] and spec.family in FAMILIES
    with pytest.raises(ValueError, match="unknown architecture family 'alexnet'"):
        build_spec({"family": "alexnet"}, **kw)
    with pytest.raises(ValueError, match="do not fit family 'resnet'"):
        build_spec({"family": "resnet", "depth": 20, "growth": 3}, **kw)


def test_selections_name_the_channels_a_layer_reads():
    spec = preresnet(20, True, image_size=8, in_channels=1)
    pruned = spec.kept({"blocks.1.select": [0, 5, 9], "head.select": [1, 2]})
    assert pruned.blocks()[1].select == (0, 5, 9) and pruned.head_select == (1, 2)
    again = pruned.kept({"blocks.1.select": [2]})
    assert again.blocks()[1].select == (9,)
    model = pruned.build().eval()
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="head's selection cannot be empty"):
        spec.kept({"head.select": []})


def test_plain_layers_refuse_to_be_emptied_by_spec():
    spec = vgg(cfg=(4, "M", 8), image_size=8, in_channels=1)
    with pytest.raises(ValueError, match="positive widths"):
        spec.kept({"layers.0": []})


def test_the_layer_counter_by_hand():
    import pytest

    from prunestudy.arch.base import Layer
    from prunestudy.arch.counting import count

    conv = Layer("conv", cin=2, cout=4, kernel=3, size=5)  # 72 weights, each used at 25 pixels
    linear = Layer("linear", cin=4, cout=10)  # 40 weights and 10 biases
    assert count([conv]) == (72, 2 * 72 * 25)
    assert count([linear]) == (50, 2 * 40)
    assert count([Layer("bn", cin=4, cout=4)]) == (8, 0)
    assert count([Layer("scale", cin=3, cout=3)]) == (3, 0)
    assert count([conv, linear, Layer("bn", cin=4, cout=4)]) == (130, 2 * (1800 + 40))
    assert count([Layer("conv", cin=3, cout=5, kernel=1, size=2)]) == (15, 2 * 15 * 4)
    with pytest.raises(ValueError, match="unknown layer kind 'pool'"):
        count([Layer("pool", cin=1, cout=1)])
