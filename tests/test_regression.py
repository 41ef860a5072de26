"""He et al.'s channel pruning: the LASSO on Gram statistics against scikit-learn on the explicit samples,
an exact count of channels, the refit against numpy's least squares, and the refit's effect end to end."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from prunestudy.arch import vgg
from prunestudy.methods import method
from prunestudy.methods.regression import (
    Regression,
    RegressionParams,
    channel_gram,
    columns,
    error_ratio,
    lasso_coef,
    lasso_select,
    patch_grams,
    refit,
)
from prunestudy.methods.thinet import reader
from prunestudy.pruning.oneshot import prune_once
from prunestudy.pruning.surgery import materialise
from tests.test_thinet import _batches, _net, _samples

VGG = vgg(cfg=(6, 4), in_channels=1, image_size=6)


def _problem(seed=0, samples=200, out=5, c=8, k=4):
    """Correlated patches [S, C, K] (channels share a common part, as real feature maps do) and a weight."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(samples, c, k, generator=g, dtype=torch.float64)
    p += 0.5 * torch.randn(samples, 1, k, generator=g, dtype=torch.float64)
    return p, torch.randn(out, c, k, generator=g, dtype=torch.float64)


def _z(p, w):
    """The explicit design Z[(s, o), c] = sum_k W[o, c, k] p[s, c, k] and y = Z 1."""
    z = torch.einsum("sck,ock->soc", p, w).reshape(-1, p.shape[1]).numpy()
    return z, z.sum(1)


def test_the_channel_gram_is_z_transpose_z_of_the_explicit_design():
    p, w = _problem()
    flat = p.reshape(len(p), -1)
    z, _ = _z(p, w)
    np.testing.assert_allclose(channel_gram(flat.T @ flat, w).numpy(), z.T @ z, rtol=1e-10)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0])
def test_lasso_on_the_reduced_design_is_scikit_learn_s_on_the_samples(alpha):
    p, w = _problem()
    z, y = _z(p, w)
    expected = Lasso(alpha=alpha, fit_intercept=False, max_iter=100_000, tol=1e-12).fit(z, y).coef_
    got = lasso_coef(z.T @ z / len(z), alpha)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (got != 0).tolist() == (expected != 0).tolist()


@pytest.mark.parametrize("keep", range(1, 8))
def test_lasso_keeps_exactly_the_requested_channels_its_support_at_the_alpha_found(keep):
    p, w = _problem(seed=keep)
    z, _ = _z(p, w)
    ztz = z.T @ z / len(z)
    kept, alpha, nonzero = lasso_select(ztz, keep)
    assert len(kept) == nonzero == keep
    assert np.flatnonzero(lasso_coef(ztz, alpha)).tolist() == kept


def test_channels_lasso_never_selects_fill_the_count_earliest_first():
    p, w = _problem()
    p[:, [2, 5]] = 0.0  # two channels that never fire: no alpha makes their beta nonzero
    z, _ = _z(p, w)
    kept, _, nonzero = lasso_select(z.T @ z / len(z), 7)
    assert nonzero == 6 and kept == [0, 1, 2, 3, 4, 6, 7]


@pytest.mark.parametrize("dead", [False, True], ids=["full-rank", "a-kept-channel-never-fires"])
def test_the_refit_is_numpy_s_least_squares_on_the_same_samples(dead):
    """Unique where X_S has full column rank; numpy's minimum-norm solution where it has not."""
    p, w = _problem()
    if dead:
        p[:, 3] = 0.0
    flat, kept = p.reshape(len(p), -1), [1, 3, 4, 6]
    y = (flat @ w.reshape(len(w), -1).T).numpy()  # every output channel at every sample
    x_s = flat[:, columns(kept, 4)].numpy()
    expected = np.linalg.lstsq(x_s, y, rcond=None)[0].T
    gram = flat.T @ flat
    new = refit(gram, w, kept)
    np.testing.assert_allclose(new.reshape(len(w), -1).numpy(), expected, rtol=1e-7, atol=1e-9)
    direct = np.sum((y - x_s @ expected.T) ** 2) / np.sum(y**2)
    assert error_ratio(gram, w, kept, new) == pytest.approx(direct, rel=1e-6)


def test_the_refitted_network_reconstructs_the_consumer_better_than_plain_removal():
    """End to end: at the sampled locations, the pruned network's consumer output (its own activations)
    is the least-squares fit of the large network's, closer to it than the same channels without refit."""
    model, cal = _net(VGG), _batches(VGG)
    params = RegressionParams({"A": {"widths": [3, 4]}})
    state = model.state_dict()
    chosen = Regression.prune(state, VGG, "A", params, model=model, calibration=cal)
    net = prune_once(state, VGG, method("regression"), "A", params, cal)
    kept = [c for c in range(6) if c not in chosen.removals["layers.0"]]
    assert net.spec.widths_vector == (3, 4) and len(chosen.removals["layers.0"]) == 3

    w, p, _ = _samples(model, VGG, 0, cal)
    y = p.reshape(len(p), -1) @ w.reshape(4, -1).T  # the large network's consumer output, every channel
    w_new, p_new, _ = _samples(materialise(net.spec, net.state).eval(), net.spec, 0, cal)
    x_s = p_new.reshape(len(p_new), -1)
    torch.testing.assert_close(x_s, p[:, kept].reshape(len(p), -1))  # the same samples, the kept channels
    refitted = ((y - x_s @ w_new.reshape(4, -1).T) ** 2).sum()
    plain = ((y - x_s @ w[:, kept].reshape(4, -1).T) ** 2).sum()
    assert refitted < plain
    best = torch.linalg.lstsq(x_s.double(), y.double()).solution
    torch.testing.assert_close(w_new.reshape(4, -1).double(), best.T, atol=1e-4, rtol=1e-4)
    assert net.record["groups"]["layers.0"]["error"] == pytest.approx(float(refitted / (y**2).sum()), rel=1e-3)


def test_the_patch_gram_is_that_of_the_samples_and_the_linear_head_is_refitted():
    model, cal = _net(VGG), _batches(VGG)
    r = reader(model, VGG.groups()[1], 1)
    _, p, _ = _samples(model, VGG, 1, cal)
    flat = p.reshape(len(p), -1).double()
    stats = patch_grams(model, [r], cal, 10)["layers.1"]
    torch.testing.assert_close(stats.gram, flat.T @ flat)
    assert stats.count == len(p) == 2 * 16 * 10
    net = prune_once(model.state_dict(), VGG, Regression, "B", RegressionParams({"B": {"keep": 0.5}}), cal)
    assert net.spec.widths_vector == (3, 2) and net.state["fc.weight"].shape == (10, 2)
    assert set(net.record["groups"]) == {"layers.0", "layers.1"}
