import torch
import torch.nn.functional as F

from prunestudy.surgery import load_momentum, materialise, momentum_by_name, rebuild_block, remove_channel
from prunestudy.train import Recipe, make_optimizer
from tests.conftest import tiny_spec


def _trained_state(spec, seed=0):
    torch.manual_seed(seed)
    model = spec.build()
    model.train()
    for _ in range(3):  # move BN running stats away from their defaults
        model(torch.randn(8, 1, 8, 8))
    return model.eval()


def test_removing_a_channel_with_zero_outgoing_weights_keeps_outputs():
    spec = tiny_spec(mids=(3, 4, 5))
    model = _trained_state(spec)
    with torch.no_grad():
        model.blocks[1].conv2.weight[:, 2] = 0
    x = torch.randn(6, 1, 8, 8)
    before = model(x)
    new_spec, state = remove_channel(spec, model.state_dict(), block=1, channel=2)
    assert new_spec.mids == (3, 3, 5)
    after = materialise(new_spec, state).eval()(x)
    torch.testing.assert_close(after, before, atol=1e-6, rtol=0)


def test_block_pruned_to_zero_becomes_its_shortcut():
    spec = tiny_spec(mids=(1, 2, 2))
    model = _trained_state(spec)
    state = model.state_dict()
    for _ in range(2):
        spec, state = remove_channel(spec, state, block=2, channel=0)
    assert spec.mids == (1, 2, 0)
    net = materialise(spec, state).eval()
    block = net.blocks[2]
    assert not block.has_branch and block.projects
    x = torch.randn(3, 8, 4, 4)  # what block 2 sees: stage-2 width, after the stride
    expected = F.conv2d(torch.relu(block.bn1(x)), block.shortcut.weight, stride=2)  # the 1x1 projection
    torch.testing.assert_close(block(x), expected)
    assert net(torch.randn(2, 1, 8, 8)).isfinite().all()


def test_counts_after_surgery_equal_a_fresh_build():
    spec = tiny_spec(mids=(2, 3, 4), widths=(4, 4, 6, 8))  # block 0 is an identity block
    state = _trained_state(spec).state_dict()
    for block, channel in [(0, 1), (0, 0), (2, 3), (1, 1)]:
        spec, state = remove_channel(spec, state, block, channel)
        net = materialise(spec, state)
        fresh = spec.build()
        assert sum(p.numel() for p in net.parameters()) == spec.param_count()
        assert state.keys() == fresh.state_dict().keys()
        assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in fresh.state_dict().items()}
    assert spec.mids == (0, 2, 3)
    assert "blocks.0.bn1.weight" not in state  # an empty identity block is the identity


def test_momentum_buffers_are_sliced_with_the_weights():
    spec = tiny_spec(mids=(3, 4, 5))
    model = spec.build()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=2, lr=0.1))
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    opt.step()
    mom = momentum_by_name(model, opt)
    new_spec, new_mom = remove_channel(spec, mom, block=2, channel=1)
    keep = [0, 2, 3, 4]
    torch.testing.assert_close(new_mom["blocks.2.conv1.weight"], mom["blocks.2.conv1.weight"][keep])
    torch.testing.assert_close(new_mom["blocks.2.conv2.weight"], mom["blocks.2.conv2.weight"][:, keep])
    torch.testing.assert_close(new_mom["blocks.2.bn2.bias"], mom["blocks.2.bn2.bias"][keep])
    net = new_spec.build()
    opt2 = make_optimizer(net, Recipe(epochs=1, batch_size=2, lr=0.1))
    load_momentum(net, opt2, new_mom)
    assert torch.equal(opt2.buffers[net.blocks[2].conv2.weight], new_mom["blocks.2.conv2.weight"])


def test_rebuilding_only_the_pruned_block_equals_a_full_rebuild():
    spec = tiny_spec(mids=(2, 3, 1))
    model = _trained_state(spec)
    x = torch.randn(5, 1, 8, 8)
    for block, channel in [(1, 0), (2, 0), (0, 1)]:  # block 2 empties: its shortcut remains
        state = model.state_dict()
        spec, state = remove_channel(spec, state, block, channel)
        model = rebuild_block(model, spec, state, block).eval()
        assert model.state_dict().keys() == spec.build().state_dict().keys()
        torch.testing.assert_close(model(x), materialise(spec, state).eval()(x), atol=0, rtol=0)
