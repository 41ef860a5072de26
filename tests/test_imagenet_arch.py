"""ImageNet ResNets and VGGs: counts against torchvision, torch's FLOP counter and fvcore; surgery against
Torch-Pruning; the pruned networks of Liu et al.'s ImageNet tables (ThiNet, SSS, He et al.) as specs."""

import logging
import random

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from prunestudy.arch import (
    FAMILIES,
    ImageNetResNetSpec,
    ImageNetVGGSpec,
    build_spec,
    imagenet_resnet,
    imagenet_vgg,
    spec_from_json,
)
from prunestudy.arch.imagenet_resnet import CFG_2X, resnet50_2x, sss_resnet50, thinet_resnet50
from prunestudy.arch.nets.imagenet_vgg import load_torchvision, to_torchvision
from prunestudy.io.options import OptionError
from prunestudy.pruning.surgery import SurgeryError, materialise, remove_channels
from tests.test_surgery import _outgoing_zeroed, _trained

KW = {"num_classes": 10, "in_channels": 3, "image_size": 32}
# small, fast members: every block kind, projections, selections, both VGG heads and classifier BN
SMALL = {
    "bottleneck": imagenet_resnet(50, blocks=(2, 2, 1, 1), width=0.125, **KW),
    "basic": imagenet_resnet(18, blocks=(1, 2, 1, 1), width=0.125, **KW),
    "selections": ImageNetResNetSpec.from_dict(
        {**imagenet_resnet(50, blocks=(2, 1, 1, 1), width=0.125, **KW).to_dict(), "selects": [None] * 5}
    ),
    "vgg-fc": imagenet_vgg(cfg=(8, "M", 12, 12, "M", 16, "M"), hidden=(24, 20), **KW),
    "vgg-fc-bn": imagenet_vgg(cfg=(8, "M", 12, "M", 16), hidden=(24,), classifier_bn=True, **KW),
    "vgg-gap": imagenet_vgg(cfg=(8, "M", 12, 16), head="gap", batch_norm=False, **KW),
    "vgg-fc-linear": imagenet_vgg(cfg=(8, "M", 12), hidden=(), **KW),  # the classifier reads the 7x7 map
}


def _meta_counts(model_fn, size: int, in_channels: int = 3) -> tuple[int, int]:
    """(params, FLOPs) of a module built on the meta device by ``model_fn``, run once at ``size``."""
    with torch.device("meta"):
        model, x = model_fn().eval(), torch.empty(1, in_channels, size, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops()


def _random_pruned(spec, rng: random.Random):
    """A random subset of every group; emptiable groups are sometimes emptied."""
    keep = {}
    for g in spec.groups():
        n = rng.choice([0, 1, g.width]) if g.emptiable and rng.random() < 0.3 else rng.randint(min(1, g.width), g.width)
        keep[g.name] = sorted(rng.sample(range(g.width), min(n, g.width)))
    return spec.kept(keep)


def _with_size(spec, size: int, in_channels: int = 3):
    return type(spec).from_dict({**spec.to_dict(), "image_size": size, "in_channels": in_channels})


# --- the unpruned networks are torchvision's --------------------------------------------------------


@pytest.mark.parametrize("depth", [18, 34, 50, 101])
def test_resnet_params_flops_and_state_dict_are_torchvisions(depth):
    spec = imagenet_resnet(depth)
    theirs = getattr(tvm, f"resnet{depth}")
    with torch.device("meta"):
        ours_sd, theirs_sd = spec.build().state_dict(), theirs(num_classes=1000).state_dict()
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in theirs_sd.items()}
    assert (spec.param_count(), spec.flops()) == _meta_counts(lambda: theirs(num_classes=1000), 224)


@pytest.mark.parametrize(("name", "bn", "theirs"), [("vgg11", True, tvm.vgg11_bn), ("vgg16", True, tvm.vgg16_bn),
                                                     ("vgg16", False, tvm.vgg16)])  # fmt: skip
def test_vgg_params_flops_and_weights_are_torchvisions(name, bn, theirs):
    spec = imagenet_vgg(name, batch_norm=bn)
    assert (spec.param_count(), spec.flops()) == _meta_counts(theirs, 224)
    with torch.device("meta"):
        ours, their_sd = spec.build(), theirs().state_dict()
    load_torchvision(ours, their_sd)  # names map, and the pooled linear weight reshapes
    mapped = to_torchvision(spec, ours.state_dict())
    assert {k: v.shape for k, v in mapped.items()} == {k: v.shape for k, v in their_sd.items()}


def test_published_counts():
    """torchvision's model cards (params; GFLOPS there are multiply-adds) and the ThiNet paper's tables."""
    approx = [
        (imagenet_resnet(18), 11.69e6, 1.81e9),
        (imagenet_resnet(34), 21.80e6, 3.66e9),
        (imagenet_resnet(50), 25.56e6, 4.09e9),
        (imagenet_vgg("vgg11"), 132.87e6, 7.61e9),
        (imagenet_vgg("vgg16"), 138.37e6, 15.47e9),
        (thinet_resnet50(30), 8.66e6, None),  # ThiNet counts FLOPs its own way (7.72 G for ResNet-50)
        (thinet_resnet50(50), 12.38e6, None),
        (thinet_resnet50(70), 16.94e6, None),
        (imagenet_vgg("thinet-conv"), 131.44e6, 9.58e9 / 2),  # ThiNet: FLOPs = 2 x multiply-adds
        (imagenet_vgg("thinet-gap"), 8.32e6, 9.34e9 / 2),
        (imagenet_vgg("thinet-tiny"), 1.32e6, 2.01e9 / 2),
    ]
    for spec, params, macs in approx:
        assert spec.param_count() == pytest.approx(params, rel=0.005), spec.to_json()
        if macs:
            assert spec.flops() / 2 == pytest.approx(macs, rel=0.005), spec.to_json()


# --- counts of every member -------------------------------------------------------------------------

NAMED = {
    **{f"resnet50-{v}": imagenet_resnet(50, variant=v) for v in ("thinet30", "resnet41", "2x")},
    **{f"vgg-{n}": imagenet_vgg(n) for n in ("thinet-conv", "thinet-gap", "thinet-tiny", "vgg16-5x")},
    "vgg11-slimming": imagenet_vgg("vgg11", classifier_bn=True, bn_gamma=0.5),
}


@pytest.mark.parametrize("name", [*SMALL, *NAMED])
def test_counter_equals_module_params_and_torch_flop_counter(name):
    base = SMALL.get(name) or NAMED[name]
    rng = random.Random(name)
    for size, cin in ((64, 3), (33, 1)):
        b = _with_size(base, size, cin)
        for spec in (b, b.scaled(0.5), _random_pruned(b, rng)):
            assert (spec.param_count(), spec.flops()) == _meta_counts(spec.build, size, cin), spec.to_json()


def _fvcore_macs(model: nn.Module, x: torch.Tensor) -> int:
    from fvcore.nn import FlopCountAnalysis

    logging.disable(logging.WARNING)
    try:
        analysis = FlopCountAnalysis(model.eval(), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        ops = analysis.by_operator()
    finally:
        logging.disable(logging.NOTSET)
    return ops["conv"] + ops["linear"]


@pytest.mark.parametrize("name", ["bottleneck", "basic", "selections", "vgg-fc-bn", "vgg-gap"])
def test_fvcore_agrees(name):
    spec = _random_pruned(SMALL[name], random.Random(1))
    torch.manual_seed(0)
    x = torch.randn(1, 3, 32, 32)
    assert _fvcore_macs(spec.build(), x) == spec.flops() // 2


# --- the pruned networks of Liu et al.'s ImageNet tables --------------------------------------------


def test_thinet_widths_are_liu_cfgs():
    for keep, per_stage in ((30, (19, 38, 76, 153)), (50, (32, 64, 128, 256)), (70, (44, 89, 179, 358))):
        spec = thinet_resnet50(keep)
        assert [b.mids for b in spec.block_specs()] == [(per_stage[b.stage],) * 2 for b in spec.block_specs()]
        assert spec == imagenet_resnet(50, variant=f"thinet{keep}")
    with pytest.raises(ValueError, match="ThiNet keeps one of"):
        thinet_resnet50(40)


@pytest.mark.parametrize(("depth", "live"), [(41, (0, 4, 6, 3)), (32, (1, 4, 4, 1)), (26, (0, 2, 5, 1))])
def test_sss_networks_are_resnet50_with_blocks_emptied(depth, live):
    spec = sss_resnet50(depth)
    blocks = spec.block_specs()
    assert tuple(sum(b.live for b in blocks if b.stage == s) for s in range(4)) == live
    assert 2 + 3 * sum(b.live for b in blocks) == depth
    firsts_kept = [blocks[i].live for i in (0, 3, 7, 13)]
    assert firsts_kept == {41: [False, True, True, True], 32: [False, True, True, True],
                           26: [False, False, False, True]}[depth]  # fmt: skip
    with torch.device("meta"):
        model = spec.build()
    stage1 = model.layer1[0]
    assert not stage1.live and [n for n, _ in stage1.named_parameters()] == [
        "downsample.0.weight", "downsample.1.weight", "downsample.1.bias"
    ]  # fmt: skip


def test_resnet50_2x_selects_conv1_inputs():
    spec = resnet50_2x()
    blocks = spec.block_specs()
    assert [(b.reads, *b.mids) for b in blocks] == list(CFG_2X)
    names = [g.name for g in spec.groups()]
    assert names[:3] == ["layer1.0.select", "layer1.0.c1", "layer1.0.c2"] and len(names) == 48
    select = spec.groups()[0]
    assert select.scale is None and select.tap is None and select.slices[0].tensor == "layer1.0.conv1.weight"
    pruned = spec.kept({"layer1.0.select": [1, 4]})
    assert pruned.block_specs()[0].select == (1, 4) and pruned.kept({"layer1.0.select": [1]}).selects[0] == (4,)
    with torch.device("meta"):
        conv1 = resnet50_2x().build().layer1[0].conv1
    assert tuple(conv1.weight.shape) == (64, 35, 1, 1)


def test_a_selection_reads_the_named_channels():
    spec = SMALL["selections"].kept({"layer1.0.select": [5, 1, 7], "layer2.0.select": []})
    model = _trained(spec)
    b = model.layer1[0]
    x = torch.randn(2, spec.stem, 8, 8).relu()
    h = F.relu(b.bn1(F.conv2d(x[:, [5, 1, 7]], b.conv1.weight)))
    h = F.relu(b.bn2(F.conv2d(h, b.conv2.weight, padding=1)))
    torch.testing.assert_close(b(x), F.relu(b.downsample(x) + b.bn3(F.conv2d(h, b.conv3.weight))))
    assert not model.layer2[0].live and model(torch.randn(2, 3, 32, 32)).isfinite().all()


# --- surgery ----------------------------------------------------------------------------------------


def _half(spec) -> dict[str, list[int]]:
    """Half of every conv or linear output group (its first slice is a producer's rows)."""
    return {
        g.name: random.Random(g.name).sample(range(g.width), g.width // 2)
        for g in spec.groups()
        if g.slices[0].dim == 0 and g.width > 1
    }


def _tp_prune(model: nn.Module, x: torch.Tensor, producers: dict[str, list[int]]) -> nn.Module:
    """Torch-Pruning's DependencyGraph removing output channels of the named convs and linear layers."""
    import torch_pruning as tp

    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    for name, idxs in producers.items():
        m = model.get_submodule(name)
        fn = tp.prune_conv_out_channels if isinstance(m, nn.Conv2d) else tp.prune_linear_out_channels
        dg.get_pruning_group(m, fn, idxs=sorted(idxs)).prune()
    return model


@pytest.mark.parametrize("name", ["bottleneck", "basic"])
def test_resnet_surgery_equals_torch_pruning(name):
    spec = SMALL[name]
    removals = _half(spec)
    x = torch.randn(4, 3, 32, 32)
    new_spec, state = remove_channels(spec, _trained(spec).state_dict(), removals)
    producers = {
        g.slices[0].tensor.removesuffix(".weight"): removals[g.name] for g in spec.groups() if g.name in removals
    }
    theirs = _tp_prune(_trained(spec), x, producers).eval()
    reference = theirs.state_dict()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in state)
    ours = materialise(new_spec, state).eval()
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)
    assert sum(p.numel() for p in theirs.parameters()) == new_spec.param_count()


class _TorchvisionVGG(tvm.VGG):
    """torchvision's VGG (features, AdaptiveAvgPool2d(7), flatten, classifier) with any cfg and classifier."""

    def __init__(self, spec: ImageNetVGGSpec):
        nn.Module.__init__(self)
        layers, cin = [], spec.in_channels
        for c in spec.cfg:
            if c == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(cin, c, 3, padding=1), *([nn.BatchNorm2d(c)] * spec.batch_norm), nn.ReLU()]
            cin = c
        self.features, self.avgpool = nn.Sequential(*layers), nn.AdaptiveAvgPool2d(7)
        head, features = [], cin * 49
        for h in spec.hidden:
            head += [nn.Linear(features, h), *([nn.BatchNorm1d(h)] * spec.classifier_bn), nn.ReLU()]
            head += [nn.Dropout(spec.dropout)] if spec.dropout else []
            features = h
        self.classifier = nn.Sequential(*head, nn.Linear(features, spec.num_classes))


@pytest.mark.parametrize("name", ["vgg-fc", "vgg-fc-bn"])
def test_vgg_surgery_equals_torch_pruning_through_the_flattened_linear_layer(name):
    """Torch-Pruning maps each removed channel of the last conv to its 49 columns of the flattened linear
    layer by itself: our [out, channels, 49] weight, sliced on dimension 1, is the same cut."""
    spec = SMALL[name]
    removals = _half(spec)
    assert f"layers.{len(spec.convs) - 1}" in removals and "hidden.0" in removals
    model = _trained(spec)
    x = torch.randn(4, 3, 32, 32)
    new_spec, state = remove_channels(spec, model.state_dict(), removals)
    theirs = _TorchvisionVGG(spec)
    theirs.load_state_dict(to_torchvision(spec, model.state_dict()))
    producers = {}
    names = {g.name: g.slices[0].tensor.removesuffix(".weight") for g in spec.groups()}
    tv_names = {k.removesuffix(".weight"): v.removesuffix(".weight") for k, v in _tv_weight_names(spec).items()}
    for group, idxs in removals.items():
        producers[tv_names[names[group]]] = idxs
    theirs = _tp_prune(theirs, x, producers).eval()
    reference = theirs.state_dict()
    mapped = to_torchvision(new_spec, state)
    assert mapped.keys() == reference.keys()
    assert all(torch.equal(mapped[k], reference[k]) for k in mapped)
    torch.testing.assert_close(materialise(new_spec, state).eval()(x), theirs(x), atol=1e-5, rtol=0)


def _tv_weight_names(spec) -> dict[str, str]:
    from prunestudy.arch.nets.imagenet_vgg import torchvision_names

    return {k: v for k, v in torchvision_names(spec).items() if k.endswith(".weight")}


@pytest.mark.parametrize("name", list(SMALL))
def test_removing_channels_nobody_reads_keeps_outputs_and_counts(name):
    spec = SMALL[name]
    model = _trained(spec)
    rng = random.Random(name)
    removals = {g.name: rng.sample(range(g.width), g.width // 3) for g in spec.groups() if g.width > 2}
    _outgoing_zeroed(model, spec, removals)
    x = torch.randn(4, 3, 32, 32)
    new_spec, state = remove_channels(spec, model.state_dict(), removals)
    net = materialise(new_spec, state).eval()
    torch.testing.assert_close(net(x), model(x), atol=1e-5, rtol=0)
    assert sum(p.numel() for p in net.parameters()) == new_spec.param_count()
    assert new_spec.widths_vector == tuple(g.width - len(removals.get(g.name, ())) for g in spec.groups())


def test_an_emptied_bottleneck_block_is_its_shortcut():
    spec = SMALL["bottleneck"]
    model = _trained(spec)
    # layer1.1 is an identity block, layer2.0 a projecting one; emptying either group empties the block
    new_spec, state = remove_channels(spec, model.state_dict(), {"layer1.1.c2": range(8), "layer2.0.c1": range(16)})
    net = materialise(new_spec, state).eval()
    assert not any(k.startswith(("layer1.1.", "layer2.0.conv", "layer2.0.bn")) for k in state)
    assert sum(p.numel() for p in net.parameters()) == new_spec.param_count() < spec.param_count()
    x = torch.randn(2, 32, 8, 8).relu()  # a block's input is a ReLU's output
    assert torch.equal(net.layer1[1](x), x)
    proj = net.layer2[0].downsample
    expected = F.relu(proj[1](F.conv2d(x, proj[0].weight, stride=2)))
    torch.testing.assert_close(net.layer2[0](x), expected)
    assert torch.equal(proj[0].weight, model.layer2[0].downsample[0].weight)


def test_plain_vgg_layers_refuse_to_be_emptied():
    spec = SMALL["vgg-fc"]
    state = spec.build().state_dict()
    for group in ("layers.3", "hidden.1"):
        with pytest.raises(SurgeryError, match=f"group {group} is a plain layer"):
            remove_channels(spec, state, {group: range(dict((g.name, g.width) for g in spec.groups())[group])})


# --- spec protocol, registry, init ------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SMALL, *NAMED])
def test_json_round_trip_stable_id_and_stages_cover_every_group(name):
    spec = SMALL.get(name) or NAMED[name]
    pruned = _random_pruned(spec, random.Random(0))
    for s in (spec, pruned):
        again = spec_from_json(s.to_json())
        assert again == s and again.spec_id == s.spec_id and s.spec_id.startswith("imagenet-")
        assert sorted(i for stage in s.stages() for i in stage) == list(range(len(s.groups())))
        assert s.with_widths(s.widths_vector) == s
    assert pruned.spec_id != spec.spec_id


def test_groups_slice_tensors_of_their_width():
    for spec in [*SMALL.values(), resnet50_2x(imagenet_resnet(50, image_size=32))]:
        with torch.device("meta"):
            state = spec.build().state_dict()
        for g in spec.groups():
            for s in g.slices:
                assert state[s.tensor].shape[s.dim] == g.width, (spec.spec_id, g.name, s)
            assert g.scale is None or g.scale in state


def test_the_registry_builds_them_and_the_papers_name_them():
    kw = {"num_classes": 1000, "in_channels": 3, "image_size": 224}
    cases = [
        ({"family": "imagenet_resnet", "depth": 50}, "ResNet-50", imagenet_resnet(50)),
        ({"family": "imagenet_resnet", "depth": 34}, "ResNet-34", imagenet_resnet(34)),
        ({"family": "imagenet_resnet", "depth": 50, "variant": "thinet70"}, "ResNet-50", thinet_resnet50(70)),
        ({"family": "imagenet_resnet", "depth": 50, "variant": "resnet26"}, "ResNet-50", sss_resnet50(26)),
        ({"family": "imagenet_resnet", "depth": 18, "blocks": [1, 1, 1, 1]}, "ResNet-10", None),
        ({"family": "imagenet_vgg", "name": "vgg16"}, "VGG-16", imagenet_vgg("vgg16")),
        ({"family": "imagenet_vgg", "name": "vgg11", "classifier_bn": True}, "VGG-11", None),
        ({"family": "imagenet_vgg", "name": "thinet-gap"}, "VGG-16", imagenet_vgg("thinet-gap")),
    ]
    for options, paper, expected in cases:
        spec = build_spec(options, **kw)
        assert spec.family in FAMILIES and FAMILIES[spec.family].spec.paper_name(options) == paper
        assert expected is None or spec == expected
    assert build_spec(cases[4][0], **kw).depth == 10
    with pytest.raises(OptionError, match="width"):
        build_spec({"family": "imagenet_resnet", "width": 0}, **kw)
    with pytest.raises(ValueError, match="depth must be one of"):
        build_spec({"family": "imagenet_resnet", "depth": 20}, **kw)
    with pytest.raises(ValueError, match="prunes the standard ResNet-50"):
        build_spec({"family": "imagenet_resnet", "depth": 34, "variant": "thinet30"}, **kw)
    with pytest.raises(ValueError, match="head must be one of"):
        build_spec({"family": "imagenet_vgg", "name": "vgg16", "head": "avg"}, **kw)


def test_vgg_variant_defaults_follow_liu_code():
    slim = imagenet_vgg("vgg11", classifier_bn=True, bn_gamma=0.5)
    assert (slim.dropout, slim.batch_norm, slim.hidden) == (0.0, True, (4096, 4096))
    assert [g.scale for g in slim.groups()][-2:] == ["hidden.0.bn.weight", "hidden.1.bn.weight"]
    tiny = imagenet_vgg("thinet-tiny")
    assert (tiny.head, tiny.hidden, tiny.batch_norm, tiny.features) == ("gap", (), False, 256)
    assert all(g.scale is None for g in tiny.groups())
    assert imagenet_vgg("vgg16").dropout == 0.5 and imagenet_vgg("vgg16", width=0.5).hidden == (2048, 2048)


def test_init_is_torchvisions():
    torch.manual_seed(0)
    model = imagenet_resnet(18, width=0.5, num_classes=10, image_size=32, zero_init_residual=True).build()
    conv = model.layer4[0].conv2
    assert conv.weight.std().item() == pytest.approx((2 / (9 * conv.out_channels)) ** 0.5, rel=0.05)
    assert not model.layer4[0].bn2.weight.any() and bool((model.layer4[0].bn1.weight == 1).all())
    bound = 1 / model.fc.in_features**0.5  # torch's default linear init, as torchvision leaves it
    assert model.fc.bias.abs().max().item() <= bound and model.fc.bias.any()
    vgg = imagenet_vgg(cfg=(8, "M", 16), hidden=(64,), classifier_bn=True, bn_gamma=0.5, **KW).build()
    assert vgg.hidden[0].fc.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert not vgg.hidden[0].fc.bias.any() and not vgg.layers[0].conv.bias.any()
    assert bool((vgg.hidden[0].bn.weight == 0.5).all() and (vgg.layers[1].bn.weight == 0.5).all())
