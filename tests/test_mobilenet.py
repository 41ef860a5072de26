"""MobileNetV2 for CIFAR: depthwise counts against fvcore, torch and torchvision; surgery against Torch-Pruning."""

import logging
import math
import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from prunestudy.arch import FAMILIES, MobileNetV2Spec, build_spec, mobilenetv2, spec_from_json
from prunestudy.arch.counting import Layer, count
from prunestudy.arch.mobilenetv2 import make_divisible
from prunestudy.arch.parts import Tap
from prunestudy.pruning.surgery import SurgeryError, load_momentum, materialise, momentum_by_name, remove_channels
from prunestudy.training.loop import make_optimizer
from prunestudy.training.recipe import Recipe
from tests.test_surgery import _outgoing_zeroed, _removals, _trained

SMALL = mobilenetv2(width=0.5, in_channels=1, image_size=16)  # 16 -> 8 -> 4 -> 2 pixels


def _pruned(spec: MobileNetV2Spec) -> MobileNetV2Spec:
    """Every other group at a third of its width, and the first residual block emptied."""
    groups = spec.groups()
    empty = next(g.name for g in groups if g.emptiable)
    widths = [0 if g.name == empty else max(1, g.width // 3) if i % 2 else g.width for i, g in enumerate(groups)]
    return spec.with_widths(widths)


def _fvcore_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """fvcore's conv + linear count: one flop per multiply-add, depthwise convs by their real weights."""
    from fvcore.nn import FlopCountAnalysis

    logging.disable(logging.WARNING)
    try:
        analysis = FlopCountAnalysis(model.eval(), x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        ops = analysis.by_operator()
    finally:
        logging.disable(logging.NOTSET)
    return ops["conv"] + ops["linear"]


def _hidden_bn_perturbed(model: torch.nn.Module) -> torch.nn.Module:
    """BN shifts and statistics away from their defaults, so that a mis-sliced channel would show."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def test_a_grouped_conv_counts_its_real_weights():
    dw = Layer("conv", cin=6, cout=6, kernel=3, size=4, groups=6)  # 6 filters of 1 x 3 x 3, at 16 pixels
    assert count([dw]) == (54, 2 * 54 * 16)
    assert count([Layer("conv", cin=4, cout=6, kernel=3, size=2, groups=2)]) == (108, 2 * 108 * 4)
    assert count([Layer("conv", cin=4, cout=6, kernel=3, size=2)]) == (216, 2 * 216 * 4)  # groups=1 unchanged
    with pytest.raises(ValueError, match="4 groups do not divide a 6 -> 6 conv"):
        Layer("conv", cin=6, cout=6, kernel=3, groups=4)


@pytest.mark.parametrize("width", [1.0, 0.5, 0.75, 1.4])
def test_params_equal_the_module_and_torchvision(width):
    """The CIFAR strides change FLOPs, not weights: torchvision's ImageNet MobileNetV2 has the same params."""
    from torchvision.models import mobilenet_v2

    spec = mobilenetv2(width=width)
    with torch.device("meta"):
        ours, theirs = spec.build(), mobilenet_v2(num_classes=10, width_mult=width)
    assert spec.param_count() == sum(p.numel() for p in ours.parameters())
    assert spec.param_count() == sum(p.numel() for p in theirs.parameters())


def test_cifar10_width_1_counts():
    spec = mobilenetv2()
    assert (spec.stem, spec.outs[-1], spec.last, len(spec.blocks()), len(spec.groups())) == (32, 320, 1280, 17, 16)
    assert spec.param_count() == 2_236_682
    assert spec.flops() == 175_952_896  # 87,976,448 multiply-adds at 32 x 32 (fvcore: the same, below)


@pytest.mark.parametrize(("width", "in_channels", "size"), [(1.0, 3, 32), (0.5, 1, 16), (0.35, 3, 7)])
def test_counts_equal_fvcore_torch_flop_counter_and_the_module(width, in_channels, size):
    base = mobilenetv2(width=width, in_channels=in_channels, image_size=size)
    pruned = _pruned(base)
    assert pruned.param_count() < base.param_count() and 0 in pruned.hiddens
    for spec in (base, pruned, base.scaled(0.3)):
        torch.manual_seed(0)
        model, x = spec.build().eval(), torch.randn(1, in_channels, size, size)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
        assert spec.flops() == counter.get_total_flops(), spec.to_json()
        assert spec.flops() // 2 == _fvcore_macs(model, x), spec.to_json()
        assert spec.param_count() == sum(p.numel() for p in model.parameters())


def test_groups_couple_the_hidden_channels_of_every_expanding_block():
    spec = SMALL
    model = spec.build()
    state = model.state_dict()
    blocks = spec.blocks()
    assert [g.name for g in spec.groups()] == [f"blocks.{b.index}" for b in blocks if b.expands]
    assert not blocks[0].expands and blocks[0].hidden == spec.stem  # t = 1: the stem's channels, not a group
    for g in spec.groups():
        b = blocks[int(g.name.split(".")[1])]
        assert g.emptiable == (b.stride == 1 and b.in_ch == b.out_ch)
        assert g.scale == f"{g.name}.bn2.weight" and isinstance(model.get_submodule(g.tap), Tap)
        assert state[f"{g.name}.dw.weight"].shape == (g.width, 1, 3, 3)
        for s in g.slices:
            assert state[s.tensor].shape[s.dim] == g.width, s
        assert len(g.slices) == 11  # expand, BN1 x 4, depthwise, BN2 x 4, project


def test_surgery_equals_torch_pruning_on_the_depthwise_convs():
    """Torch-Pruning's DependencyGraph, pruning each depthwise conv's outputs, slices the same tensors."""
    import torch_pruning as tp

    spec = SMALL
    torch.manual_seed(0)
    model = _hidden_bn_perturbed(spec.build())
    theirs = _hidden_bn_perturbed(spec.build())
    theirs.load_state_dict(model.state_dict())
    removals = {g.name: random.Random(g.name).sample(range(g.width), g.width // 2) for g in spec.groups()[::2]}
    removals["blocks.16"] = list(range(spec.groups()[-1].width - 1))  # a plain block down to one channel
    x = torch.randn(4, spec.in_channels, spec.image_size, spec.image_size)

    new_spec, state = remove_channels(spec, model.state_dict(), removals)
    dg = tp.DependencyGraph().build_dependency(theirs, example_inputs=x)
    for name, channels in removals.items():
        dg.get_pruning_group(theirs.get_submodule(f"{name}.dw"), tp.prune_conv_out_channels, idxs=channels).prune()

    reference = theirs.state_dict()
    assert state.keys() == reference.keys()
    assert max((state[k].double() - reference[k].double()).abs().max().item() for k in state if state[k].numel()) == 0
    ours = materialise(new_spec, state).eval()
    assert torch.equal(ours(x), theirs.eval()(x))
    assert sum(p.numel() for p in theirs.parameters()) == new_spec.param_count()


def test_removing_channels_nobody_reads_keeps_the_outputs():
    spec = SMALL
    model = _trained(spec)
    removals = {k: v for k, v in _removals(spec, random.Random(3)).items() if v}
    _outgoing_zeroed(model, spec, removals)
    x = torch.randn(4, spec.in_channels, spec.image_size, spec.image_size)
    new_spec, state = remove_channels(spec, model.state_dict(), removals)
    torch.testing.assert_close(materialise(new_spec, state).eval()(x), model(x), atol=1e-5, rtol=0)
    assert new_spec.widths_vector == tuple(g.width - len(removals.get(g.name, ())) for g in spec.groups())


def test_an_emptied_residual_block_is_the_identity():
    spec = SMALL
    model = _trained(spec)
    group = next(g for g in spec.groups() if g.emptiable)
    new_spec, state = remove_channels(spec, model.state_dict(), {group.name: range(group.width)})
    assert not any(k.startswith(f"{group.name}.") for k in state)  # no projection BN left to add its shift
    net = materialise(new_spec, state).eval()
    assert sum(p.numel() for p in net.parameters()) == new_spec.param_count() < spec.param_count()
    block = net.get_submodule(group.name)
    b = new_spec.blocks()[int(group.name.split(".")[1])]
    x = torch.randn(2, b.in_ch, 4, 4)
    assert torch.equal(block(x), x)
    assert net(torch.randn(2, spec.in_channels, spec.image_size, spec.image_size)).isfinite().all()


def test_a_block_without_a_shortcut_refuses_to_be_emptied():
    spec = SMALL
    state = spec.build().state_dict()
    plain = next(g for g in spec.groups() if not g.emptiable)
    with pytest.raises(SurgeryError, match=f"group {plain.name} is a plain layer and cannot be emptied"):
        remove_channels(spec, state, {plain.name: range(plain.width)})
    with pytest.raises(ValueError, match="has no shortcut: its hidden width must be positive"):
        spec.kept({plain.name: []})
    with pytest.raises(ValueError, match="has no expand conv"):
        MobileNetV2Spec.from_dict({**spec.to_dict(), "hiddens": [spec.stem - 1, *spec.hiddens[1:]]})


def test_momentum_is_sliced_like_the_weights_and_keeps_its_layout():
    spec = SMALL
    model = spec.build().to(memory_format=torch.channels_last)
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=2, lr=0.1))
    x = torch.randn(4, spec.in_channels, spec.image_size, spec.image_size)
    model(x.contiguous(memory_format=torch.channels_last)).sum().backward()
    opt.step()
    removals = _removals(spec, random.Random(1))
    new_spec, weights = remove_channels(spec, {k: v.detach() for k, v in model.state_dict().items()}, removals)
    _, mom = remove_channels(spec, momentum_by_name(model, opt), removals)
    for name, buf in mom.items():
        assert buf.shape == weights[name].shape, name
        if buf.dim() == 4 and buf.shape[1] > 1 and buf.shape[2] > 1:
            assert buf.is_contiguous(memory_format=torch.channels_last), name
    net = materialise(new_spec, weights)
    opt2 = make_optimizer(net, Recipe(epochs=1, batch_size=2, lr=0.1))
    load_momentum(net, opt2, mom)
    assert len(opt2.buffers) == len(mom)


def test_json_round_trip_stable_id_and_scaling_keeps_emptied_blocks_empty():
    spec, pruned = mobilenetv2(), _pruned(mobilenetv2())
    for s in (spec, pruned):
        again = spec_from_json(s.to_json())
        assert again == s and again.spec_id == s.spec_id and s.spec_id.startswith("mobilenetv2-")
    assert mobilenetv2().spec_id == spec.spec_id != pruned.spec_id
    emptied = [i for i, w in enumerate(pruned.widths_vector) if w == 0]
    for factor in (0.01, 0.5, 2.0):
        scaled = pruned.scaled(factor).widths_vector
        assert [i for i, w in enumerate(scaled) if w == 0] == emptied
        assert min(w for i, w in enumerate(scaled) if i not in emptied) >= 1


def test_the_registry_builds_it_and_the_papers_name_it():
    spec = build_spec({"family": "mobilenetv2", "width": 0.5}, num_classes=100, in_channels=3, image_size=32)
    assert spec == mobilenetv2(width=0.5, num_classes=100) and spec.family in FAMILIES
    assert spec.build()(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert MobileNetV2Spec.paper_name({"family": "mobilenetv2"}) == "MobileNetV2"
    assert MobileNetV2Spec.paper_name({"width": 1.0}) == "MobileNetV2"
    assert MobileNetV2Spec.paper_name({"width": 0.5}) == "MobileNetV2-0.5"
    assert [make_divisible(v) for v in (32 * 0.35, 16 * 0.5, 24 * 0.75, 1280 * 1.4)] == [16, 8, 24, 1792]


def test_init_is_torchvisions():
    """He-normal with torch's fan_out (k^2 x out channels, depthwise too), BN 1/0, linear N(0, 0.01)."""
    torch.manual_seed(0)
    model = mobilenetv2().build()
    for conv in (model.last, model.blocks[16].dw, model.blocks[16].expand):
        k, out = conv.kernel_size[0], conv.out_channels
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (k * k * out)), rel=0.05)
    assert model.fc.weight.std().item() == pytest.approx(0.01, rel=0.05) and not model.fc.bias.any()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(bool((m.weight == 1).all() and not m.bias.any()) for m in bns)
