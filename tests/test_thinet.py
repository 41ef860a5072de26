"""ThiNet: samples against the consumer's real output, the greedy and the refit against direct computations."""

from itertools import combinations
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch import resnet, vgg
from prunestudy.arch.base import Group, Slice
from prunestudy.io.options import OptionError
from prunestudy.methods import method
from prunestudy.methods.thinet import (
    Reader,
    ThiNet,
    ThiNetParams,
    collect,
    contributions,
    error_ratio,
    greedy,
    patches,
    plan,
    reader,
    removed_energy,
    scales,
    thinet_grams,
)
from prunestudy.pruning.oneshot import prune_once
from prunestudy.pruning.surgery import materialise

VGG = vgg(cfg=(6, 4), in_channels=1, image_size=6)


def _net(spec, seed=0):
    torch.manual_seed(seed)
    model = spec.build()
    with torch.no_grad():
        for m in model.modules():  # running statistics of a trained network: no channel silent by design
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.bias.uniform_(0.0, 0.3)
    return model.eval()


def _batches(spec, n=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(16, spec.in_channels, spec.image_size, spec.image_size, generator=gen) for _ in range(n)]


def _samples(model, spec, group_index, calibration, locations=10):
    """Every sample a method draws for one group: (weight [out, C, K], patches [S, C, K], channels [S])."""
    r = reader(model, spec.groups()[group_index], group_index)
    got = []
    collect(model, [r], calibration, locations, lambda _r, w, p, o: got.append((w, p, o)))
    return got[0][0], torch.cat([p for _, p, _ in got]), torch.cat([o for _, _, o in got])


def test_sampled_contributions_add_up_to_the_consumer_s_output_at_a_stride_and_padding():
    gen = torch.Generator().manual_seed(0)
    weight, x = torch.randn(7, 5, 3, 3, generator=gen, dtype=torch.float64), torch.randn(3, 5, 9, 9, generator=gen)
    r = Reader(0, "g", "conv.weight", "conv", (3, 3), (2, 2), (1, 1), (1, 1))
    p, o, where = patches(x, r, 7, 20, gen)
    y = F.conv2d(x.double(), weight, stride=2, padding=1)
    expected = y[where[:, 0], o, where[:, 1], where[:, 2]]
    w = weight.reshape(7, 5, 9)
    torch.testing.assert_close(contributions(w, p, o).sum(1), expected)
    assert p.shape == (60, 5, 9) and bool((where[:, 1:] < 5).all())  # 9 pixels at stride 2: 5 positions


def test_the_gram_matrix_is_that_of_the_samples_and_the_first_pick_has_the_smallest_energy():
    model, cal = _net(VGG), _batches(VGG)
    w, p, o = _samples(model, VGG, 0, cal)
    x = contributions(w, p, o)
    r = reader(model, VGG.groups()[0], 0)
    h = thinet_grams(model, [r], cal, 10)["layers.0"]
    torch.testing.assert_close(h, x.T @ x)
    assert greedy(h, 3)[0] == int(torch.argmin((x**2).sum(0)))


def test_each_greedy_step_takes_the_direct_argmin_and_the_objective_is_the_direct_sum():
    model, cal = _net(VGG), _batches(VGG)
    x = contributions(*_samples(model, VGG, 0, cal)).numpy()
    h = torch.from_numpy(x.T @ x)
    removed = greedy(h, 3)
    for step, j in enumerate(removed):  # brute force over the candidates of each step
        energy = {c: float(np.sum(x[:, [*removed[:step], c]].sum(1) ** 2)) for c in range(6) if c not in removed[:step]}
        assert j == min(energy, key=energy.get)
    direct = float(np.sum(x[:, removed].sum(1) ** 2))
    assert removed_energy(h, removed) == pytest.approx(direct, rel=1e-10)


def test_the_scales_are_numpy_s_least_squares_and_the_error_ratio_is_direct():
    model, cal = _net(VGG), _batches(VGG)
    x = contributions(*_samples(model, VGG, 0, cal)).numpy()
    y, kept = x.sum(1), [0, 2, 5]
    h = torch.from_numpy(x.T @ x)
    expected = np.linalg.lstsq(x[:, kept], y, rcond=None)[0]
    w = scales(h, kept)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-8)
    direct = np.sum((y - x[:, kept] @ expected) ** 2) / np.sum(y**2)
    assert error_ratio(h, kept, w) == pytest.approx(direct, rel=1e-6)


def _brute_force(x: np.ndarray, remove: int) -> list[tuple[float, tuple[int, ...]]]:
    return sorted((float(np.sum(x[:, list(t)].sum(1) ** 2)), t) for t in combinations(range(x.shape[1]), remove))


def test_the_greedy_is_exact_when_contributions_are_orthogonal():
    """Orthogonal contributions make the energy additive, sum_T ||x_c||^2, so removing the smallest norms
    one at a time is optimal, and distinct norms make the optimum unique: the greedy must equal it."""
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(40, 6)))
    x = q * np.array([3.0, 0.5, 2.0, 0.1, 1.0, 4.0])
    (best, best_set), (second, _) = _brute_force(x, 3)[:2]
    assert best < second  # a unique optimum
    assert sorted(greedy(torch.from_numpy(x.T @ x), 3)) == list(best_set) == [1, 3, 4]


def test_the_greedy_is_the_paper_s_heuristic_not_an_exhaustive_search():
    """Two large channels that cancel are removed together at no cost, but the greedy starts from the
    smallest single channel and never reaches that pair: it keeps ThiNet's greedy, and its result is only
    bounded below by the optimum."""
    rng = np.random.default_rng(1)
    v = rng.normal(size=40)
    x = np.column_stack([v, -v, 0.1 * rng.normal(size=(40, 4))])
    (best, best_set) = _brute_force(x, 2)[0]
    chosen = greedy(torch.from_numpy(x.T @ x), 2)
    assert best_set == (0, 1) and best == pytest.approx(0.0, abs=1e-20)
    assert not {0, 1} & set(chosen) and removed_energy(torch.from_numpy(x.T @ x), chosen) > best


@pytest.mark.parametrize(("widths", "group"), [([3, 4], 0), ([6, 2], 1)], ids=["conv-consumer", "linear-consumer"])
def test_the_pruned_network_reproduces_the_refitted_output_at_the_sampled_locations(widths, group):
    """End to end: the consumer of the pruned network, reading its own (pruned) activations at the same
    locations, outputs y_hat = x_S w, so the edit scaled the right tensor's right columns."""
    model, cal = _net(VGG), _batches(VGG)
    params = ThiNetParams({"A": {"widths": widths}})
    net = prune_once(model.state_dict(), VGG, ThiNet, "A", params, cal)
    assert net.spec.widths_vector == tuple(widths)
    x = contributions(*_samples(model, VGG, group, cal))
    h = x.T @ x
    width = VGG.groups()[group].width
    kept = [c for c in range(width) if c not in greedy(h, width - widths[group])]
    y_hat = x[:, kept] @ scales(h, kept)
    pruned = materialise(net.spec, net.state).eval()
    w, p, o = _samples(pruned, net.spec, group, cal)
    torch.testing.assert_close(contributions(w, p, o).sum(1), y_hat, atol=1e-5, rtol=1e-5)
    assert net.record["error"][f"layers.{group}"] == pytest.approx(error_ratio(h, kept, scales(h, kept)))
    assert net.record["removed"] == {f"layers.{group}": width - widths[group]}


def test_a_keep_fraction_prunes_every_group_of_a_resnet_and_the_result_runs():
    spec = resnet(8, width=0.5, in_channels=1, image_size=8)
    model = _net(spec)
    params = ThiNetParams({"half": {"keep": 0.5, "skip": ["blocks.2"]}}, locations=4)
    ThiNet.check(params, spec, ["half"])
    net = prune_once(model.state_dict(), spec, method("thinet"), "half", params, _batches(spec, 1))
    assert net.spec.mids == (4, 8, 32) and net.record["unsupported"] == []
    out = materialise(net.spec, net.state).eval()(torch.randn(2, 1, 8, 8))
    assert out.shape == (2, 10) and bool(torch.isfinite(out).all())


def test_a_consumer_that_is_not_a_plain_conv_is_left_whole_or_refused():
    model = nn.Module()
    model.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
    group = Group("g", 4, (Slice("dw.weight", 1),))
    spec = SimpleNamespace(groups=lambda: (group,), spec_id="depthwise")
    assert reader(model, group, 0) is None
    p = plan(model, spec, {"keep": 0.5}, "thinet")
    assert p.keep == {} and p.unsupported == ["g"]
    with pytest.raises(ValueError, match="thinet cannot prune group g: its consumer is not a plain conv or linear"):
        plan(model, spec, {"widths": [2]}, "thinet")


def test_settings_and_targets_are_checked_before_any_job():
    with pytest.raises(ValueError, match="keep must be a fraction in"):
        ThiNetParams({"A": {"keep": 1.5}})
    with pytest.raises(ValueError, match="needs 'keep'"):
        ThiNetParams({"A": {"ratios": [0.5]}})
    with pytest.raises(OptionError, match="locations"):
        ThiNetParams(locations=0)
    params = ThiNetParams({"A": {"widths": [7, 4]}, "B": {"keep": 0.3, "skip": ["layers.9"]}})
    with pytest.raises(ValueError, match="name no setting"):
        ThiNet.check(params, VGG, ["C"])
    with pytest.raises(OptionError, match=r"prune\.settings\.A: group layers\.0 cannot keep 7 of its 6"):
        ThiNet.check(params, VGG, ["A"])
    with pytest.raises(OptionError, match=r"prune\.settings\.B: skip names no group"):
        ThiNet.check(params, VGG, ["B"])
    with pytest.raises(ValueError, match="are not names of its settings"):
        ThiNet.check(params, VGG, [0.5])
    with pytest.raises(ValueError, match="thinet reads activations"):
        ThiNet.prune(VGG.build().state_dict(), VGG, "B", ThiNetParams({"B": {"keep": 0.5}}))
