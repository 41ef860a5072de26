"""Surgery for every family: outputs kept, counts equal a fresh build, Torch-Pruning agrees, layouts kept."""

import random
import re

import pytest
import torch
import torch.nn.functional as F

from prunestudy.arch import densenet, preresnet, resnet, vgg, wrn
from prunestudy.pruning.surgery import SurgeryError, load_momentum, materialise, momentum_by_name, remove_channels
from prunestudy.training.loop import make_optimizer
from prunestudy.training.recipe import Recipe
from tests.conftest import tiny_spec

FAMILIES = {
    "wrn": wrn(16, 1, in_channels=1, image_size=8),
    "vgg": vgg(cfg=(8, 8, "M", 16, "M", 16, 24), in_channels=1, image_size=8),
    "vgg-a": vgg(cfg=(8, "M", 12, 12, "M", 16), hidden=24, in_channels=1, image_size=8),
    "resnet": resnet(20, width=0.5, in_channels=1, image_size=8),
    "preresnet": preresnet(20, True, in_channels=1, image_size=8),
    "preresnet-basic": preresnet(14, False, in_channels=1, image_size=8),
    "densenet": densenet(10, 6, in_channels=1, image_size=8),
    "densenet-bc": densenet(16, 6, bc=True, in_channels=1, image_size=8),
}


def _trained(spec, seed=0):
    """A network whose BN statistics have moved away from their defaults, in eval mode."""
    torch.manual_seed(seed)
    model = spec.build().train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, spec.in_channels, spec.image_size, spec.image_size))
        for m in model.modules():  # BN shifts away from zero, so that an ignored channel would show
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.normal_()
    return model.eval()


def _removals(spec, rng, share=0.4):
    """Hundreds-at-once style: a random share of every group (plain layers keep at least one)."""
    out = {}
    for g in spec.groups():
        n = min(round(g.width * share), g.width - (0 if g.emptiable else 1))
        out[g.name] = rng.sample(range(g.width), n)
    return out


def _outgoing_zeroed(model, spec, removals):
    """Zero every weight that reads a removed channel (conv inputs, linear inputs)."""
    groups = {g.name: g for g in spec.groups()}
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, channels in removals.items():
            for s in groups[name].slices:
                if s.dim == 1:
                    params[s.tensor].index_fill_(1, torch.tensor(channels, dtype=torch.long), 0.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_removing_channels_nobody_reads_keeps_outputs_and_counts(family):
    spec = FAMILIES[family]
    model = _trained(spec)
    removals = _removals(spec, random.Random(family))
    # a removed channel is still an input of BN-ReLU in the emptied-branch case: only test groups left alive
    removals = {k: v for k, v in removals.items() if len(v) < dict((g.name, g.width) for g in spec.groups())[k]}
    _outgoing_zeroed(model, spec, removals)
    x = torch.randn(6, spec.in_channels, spec.image_size, spec.image_size)
    before = model(x)
    new_spec, state = remove_channels(spec, model.state_dict(), removals)
    net = materialise(new_spec, state).eval()
    torch.testing.assert_close(net(x), before, atol=1e-6, rtol=0)
    fresh = new_spec.build()
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in fresh.state_dict().items()}
    assert sum(p.numel() for p in net.parameters()) == new_spec.param_count()
    assert new_spec.widths_vector == tuple(g.width - len(removals.get(g.name, ())) for g in spec.groups())


@pytest.mark.parametrize("family", ["wrn", "resnet", "preresnet", "densenet-bc"])
def test_an_emptied_residual_branch_becomes_its_shortcut(family):
    spec = FAMILIES[family]
    model = _trained(spec)
    group = next(g for g in spec.groups() if g.emptiable and g.tap)  # a tapped group: a branch's mid
    new_spec, state = remove_channels(spec, model.state_dict(), {group.name: range(group.width)})
    net = materialise(new_spec, state).eval()
    assert sum(p.numel() for p in net.parameters()) == new_spec.param_count() < spec.param_count()
    unit = net.get_submodule(group.name.rsplit(".", 1)[0] if family.startswith(("pre", "dense")) else group.name)
    assert not any(n.startswith(("conv1", "conv2", "bn2")) for n, _ in unit.named_parameters())
    assert net(torch.randn(2, spec.in_channels, spec.image_size, spec.image_size)).isfinite().all()


def test_an_emptied_identity_block_is_the_identity():
    spec = tiny_spec(mids=(2, 3, 4), widths=(4, 4, 6, 8))  # block 0 is an identity block
    model = _trained(spec)
    new_spec, state = remove_channels(spec, model.state_dict(), {"blocks.0": [0, 1]})
    assert "blocks.0.bn1.weight" not in state  # no dead BN, unlike the reference's parameter count
    block = materialise(new_spec, state).eval().blocks[0]
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(block(x), x)


def test_a_projection_block_emptied_is_its_projection():
    spec = tiny_spec(mids=(1, 2, 2))
    model = _trained(spec)
    new_spec, state = remove_channels(spec, model.state_dict(), {"blocks.2": [0, 1]})
    block = materialise(new_spec, state).eval().blocks[2]
    x = torch.randn(3, 8, 4, 4)
    expected = F.conv2d(torch.relu(block.bn1(x)), block.shortcut.weight, stride=2)
    torch.testing.assert_close(block(x), expected)


def test_plain_layers_and_bad_removals_are_refused():
    spec = FAMILIES["vgg"]
    state = spec.build().state_dict()
    with pytest.raises(SurgeryError, match="plain layer and cannot be emptied"):
        remove_channels(spec, state, {"layers.0": range(8)})
    with pytest.raises(SurgeryError, match=r"has 8 channels; cannot remove \[8\]"):
        remove_channels(spec, state, {"layers.0": [8]})
    with pytest.raises(SurgeryError, match=re.escape("no prunable group 'layers.9'")):
        remove_channels(spec, state, {"layers.9": [0]})


@pytest.mark.parametrize("family", FAMILIES)
def test_momentum_is_sliced_like_the_weights_and_keeps_its_layout(family):
    spec = FAMILIES[family]
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
            assert weights[name].is_contiguous(memory_format=torch.channels_last), name
    net = materialise(new_spec, weights)
    opt2 = make_optimizer(net, Recipe(epochs=1, batch_size=2, lr=0.1))
    load_momentum(net, opt2, mom)
    assert len(opt2.buffers) == len(mom)


def _torch_pruning_result(model, spec, removals, x):
    """Torch-Pruning's DependencyGraph removing the same output channels of each group's producing conv."""
    import torch_pruning as tp

    dg = tp.DependencyGraph().build_dependency(model, example_inputs=x)
    for g in spec.groups():
        if not removals.get(g.name):
            continue
        producer = model.get_submodule(g.slices[0].tensor.rsplit(".", 1)[0])
        group = dg.get_pruning_group(producer, tp.prune_conv_out_channels, idxs=sorted(removals[g.name]))
        group.prune()
    return model


@pytest.mark.parametrize("family", ["wrn", "vgg", "vgg-a", "resnet", "densenet-bc"])
def test_surgery_equals_torch_pruning_dependency_graph(family):
    """Groups whose first slice is a producing conv's outputs: Torch-Pruning can express the same removal.

    Selection groups (PreResNet, DenseNet-40) prune a consumer's inputs while the BN before it keeps every
    channel; Torch-Pruning's graph couples that BN to the conv, so it cannot express them: those are
    checked against zeroed weights in the test above."""
    spec = FAMILIES[family]
    model = _trained(spec)
    removals = {
        g.name: random.Random(g.name).sample(range(g.width), g.width // 2)
        for g in spec.groups()
        if g.tap and g.slices[0].dim == 0 and g.width > 1
    }
    x = torch.randn(4, spec.in_channels, spec.image_size, spec.image_size)
    new_spec, state = remove_channels(spec, model.state_dict(), removals)
    ours = materialise(new_spec, state).eval()
    theirs = _torch_pruning_result(_trained(spec), spec, removals, x).eval()
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)
    assert sum(p.numel() for p in theirs.parameters()) == new_spec.param_count()


def test_weights_that_do_not_fit_their_spec_are_refused_naming_the_file():
    from prunestudy.io.artifacts import ArtifactError
    from prunestudy.pruning.surgery import check_state

    spec = wrn(10, 1, in_channels=1, image_size=8)
    state = spec.build().state_dict()
    check_state(spec, state, "model.pt")  # the spec's own weights fit
    other = wrn(10, 2, in_channels=1, image_size=8).build().state_dict()
    with pytest.raises(ArtifactError, match=r"^model\.pt: the weights do not fit wrn10-\w+: .* \(and \d+ more\)"):
        check_state(spec, other, "model.pt")
    wide = dict(state, **{"head.fc.weight": torch.zeros(10, 99)})
    with pytest.raises(ArtifactError, match=r"head\.fc\.weight is \(10, 99\), not \(10, \d+\); run snakemake again"):
        check_state(spec, wide, "model.pt")
    with pytest.raises(ArtifactError, match=r"head\.fc\.bias missing"):
        check_state(spec, {k: v for k, v in state.items() if k != "head.fc.bias"}, "model.pt")
