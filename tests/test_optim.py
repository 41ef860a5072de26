import copy

import pytest
import torch
import torch.nn.functional as F

from prunestudy.training.optim import SGD
from tests.conftest import tiny_spec


def _steps(model, opt, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(16, 1, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("nesterov", [False, True])
def test_updates_are_bit_identical_to_torch_optim_sgd(nesterov):
    torch.manual_seed(0)
    ours_net = tiny_spec().build()
    ref_net = copy.deepcopy(ours_net)
    hp = dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=nesterov)
    ours, ref = SGD(ours_net.parameters(), **hp), torch.optim.SGD(ref_net.parameters(), **hp)
    _steps(ours_net, ours, 4)
    _steps(ref_net, ref, 4)
    for a, b in zip(ours_net.parameters(), ref_net.parameters(), strict=True):
        assert torch.equal(a, b)
        assert torch.equal(ours.buffers[a], ref.state[b]["momentum_buffer"])


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    net = tiny_spec().build()
    other = copy.deepcopy(net)
    opt = SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    _steps(net, opt, 3)
    restored = SGD(other.parameters(), lr=1.0, momentum=0.9, weight_decay=5e-4)
    other.load_state_dict(net.state_dict())
    restored.load_state_dict(opt.state_dict())
    _steps(net, opt, 2, seed=1)
    _steps(other, restored, 2, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), other.parameters(), strict=True))


def test_parameter_groups_match_torch_optim_sgd_groups():
    """Per-group weight decay and learning-rate scale: torch's param groups, bit for bit."""
    torch.manual_seed(0)
    ours_net = tiny_spec().build()
    ref_net = copy.deepcopy(ours_net)

    def groups(net):
        bn = [p for n, p in net.named_parameters() if "bn" in n]
        rest = [p for n, p in net.named_parameters() if "bn" not in n]
        return bn, rest

    bn, rest = groups(ours_net)
    ours = SGD(
        [{"params": rest, "weight_decay": 5e-4}, {"params": bn, "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.9,
    )
    rbn, rrest = groups(ref_net)
    ref = torch.optim.SGD(
        [{"params": rrest, "weight_decay": 5e-4}, {"params": rbn, "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.9,
    )
    _steps(ours_net, ours, 3)
    _steps(ref_net, ref, 3)
    assert all(torch.equal(a, b) for a, b in zip(ours_net.parameters(), ref_net.parameters(), strict=True))
