"""Channel pruning by LASSO selection and least-squares reconstruction (He et al., ICCV 2017).

A group's channels are read by one consumer of weight W [out, C, kh, kw] (a linear layer is a 1x1 conv
on the pooled features). At ``locations`` random positions of each calibration image, the consumer's
whole output Y (every output channel, bias aside) is sampled with the patches X it reads. Channel
selection: with Z[(s, o), c] = sum_k W[o, c, k] X[s, c, k] and y = sum_c Z[:, c] = vec(Y), solve
min_beta (1/2N) ||y - Z beta||^2 + alpha ||beta||_1 (scikit-learn's Lasso, no intercept) with alpha
bisected until exactly ``keep`` coefficients are nonzero; where no alpha gives exactly that (ties), the
fewest nonzeros above ``keep`` and then the ``keep`` largest |beta|. Reconstruction: the consumer's kept
input columns are refitted, W' = argmin ||Y - X_S W'^T||^2 over the samples (:attr:`Pruning.edits`),
and beta is dropped, as in the reference. The record holds, per group, alpha, the nonzeros LASSO found
and the relative reconstruction error ||Y - X_S W'^T||^2 / ||Y||^2 on the samples.

Only the Gram matrix G = X^T X of the sampled patches ([C k^2, C k^2]) is accumulated: Z^T Z is G
weighted by W^T W and summed over the kernel taps, and Z^T y = Z^T Z 1. LASSO runs on an equivalent
design of C rows (Z^T Z = V L V^T gives the rows sqrt(L) V^T, whose residual differs from Z's by a
constant), with alpha rescaled so that the selection path is the same; the record gives alpha in the
N = samples x out convention above. Targets and settings are ThiNet's (:mod:`.thinet`).

Deviations from the paper and its reference code (docs/deviations.md):

- One shot: every group is selected and refitted from the *unpruned* network's activations, at once.
  The paper prunes layer by layer, its inputs from the already-pruned network and its targets from the
  original one (reducing accumulated error), and treats a residual branch's last layer against the
  block's output; here each group reconstructs its consumer's own output.
- alpha is bisected to an exact count; the reference stops anywhere in [keep, 1.1 keep] nonzeros and
  keeps them all.
- No bias is fitted: the reference's reconstruction fits one, our convs have none; a consumer with a
  bias (a linear layer) keeps its bias as it was.
- Calibration: 2,000 training images with ``locations`` = 10 samples each, so that the up to C k^2
  weights of each refitted output channel have many more samples than unknowns (the reference also
  draws 10 samples per image).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from prunestudy.methods.base import Pruning
from prunestudy.methods.thinet import Reader, Reconstruction, ThiNetParams, collect, pruned_edits, solve_normal

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from prunestudy.arch import ArchSpec


@dataclass(frozen=True)
class RegressionParams(ThiNetParams):
    """ThiNet's settings (name -> {"keep", "skip"} or {"widths"}) and ``locations`` per image."""


@dataclass
class Samples:
    """A group's sufficient statistics: the patch Gram matrix G [C K, C K] and the number of samples."""

    gram: torch.Tensor
    count: int = 0


def patch_grams(
    model: nn.Module, readers: Sequence[Reader], calibration: Iterable[torch.Tensor], locations: int
) -> dict[str, Samples]:
    """G = X^T X over the sampled patches (fp64), per group."""
    stats: dict[str, Samples] = {}

    def fold(r: Reader, weight: torch.Tensor, p: torch.Tensor, o: torch.Tensor) -> None:
        x = p.reshape(len(p), -1).double()
        if r.group not in stats:
            stats[r.group] = Samples(x.T @ x, len(x))
        else:
            stats[r.group].gram += x.T @ x
            stats[r.group].count += len(x)

    collect(model, readers, calibration, locations, fold)
    missing = [r.group for r in readers if r.group not in stats]
    if missing:
        raise ValueError(f"no calibration batch reached the consumers of {missing}")
    return stats


def channel_gram(gram: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Z^T Z [C, C] from the patch Gram G and the consumer weight [out, C, K]:
    sum over taps k, k' of G[(c, k), (c', k')] * sum_o W[o, c, k] W[o, c', k']."""
    out, c, k = weight.shape
    w = weight.double().reshape(out, c * k)
    return (gram * (w.T @ w)).reshape(c, k, c, k).sum((1, 3))


def reduced_design(ztz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows A and target b with A^T A = Z^T Z and A^T b = Z^T y (y = Z 1): ||b - A beta||^2 differs from
    ||y - Z beta||^2 by a constant, so LASSO on (A, b) follows Z's path with as many rows as channels."""
    import numpy as np

    lam, v = np.linalg.eigh(ztz)
    live = lam > max(lam.max(), 0.0) * 1e-12
    lam, v = lam[live], v[:, live]
    a = np.sqrt(lam)[:, None] * v.T
    a[:, np.diagonal(ztz) <= 0] = 0.0  # a channel that never fires: exactly zero, not eigh's rounding
    b = (v.T @ ztz.sum(1)) / np.sqrt(lam)
    return a, b


def lasso(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """scikit-learn's coordinate descent, min (1/2 rows) ||b - a beta||^2 + alpha ||beta||_1, no intercept."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Lasso(alpha=alpha, fit_intercept=False, max_iter=100_000, tol=1e-10).fit(a, b).coef_


def lasso_coef(ztz: np.ndarray, alpha: float) -> np.ndarray:
    """beta of min (1/2N) ||y - Z beta||^2 + alpha ||beta||_1, given ztz = Z^T Z / N."""
    a, b = reduced_design(ztz)
    return lasso(a, b, alpha / len(a))


def lasso_select(ztz: np.ndarray, keep: int, steps: int = 60) -> tuple[list[int], float, int]:
    """The ``keep`` channels LASSO selects (ztz = Z^T Z / N), the alpha chosen and its nonzero count.

    From alpha_max (every beta zero), alpha falls tenfold until at least ``keep`` are nonzero, then is
    bisected (geometrically) until exactly ``keep`` are, keeping the fewest nonzeros seen above it; the
    ``keep`` largest |beta| of that solution are kept (a tie keeps the earlier channel).
    """
    import numpy as np

    a, b = reduced_design(ztz)
    rows = len(a)
    hi = lo = float(np.abs(a.T @ b).max()) / rows
    best: tuple[int, float, np.ndarray] | None = None
    for _ in range(steps):
        lo /= 10
        beta = lasso(a, b, lo)
        best = (int(np.count_nonzero(beta)), lo, beta)
        if best[0] >= keep:
            break
    for _ in range(steps if best[0] > keep else 0):
        mid = float(np.sqrt(lo * hi))
        beta = lasso(a, b, mid)
        nnz = int(np.count_nonzero(beta))
        if nnz < keep:
            hi = mid
            continue
        lo = mid
        if nnz <= best[0]:
            best = (nnz, mid, beta)
        if nnz == keep:
            break
    nnz, alpha, beta = best
    kept = sorted(np.argsort(-np.abs(beta), kind="stable")[:keep].tolist())
    return kept, alpha * rows, nnz


def columns(kept: Sequence[int], taps: int) -> list[int]:
    """Positions in the flattened [C K] patch of the kept channels' taps."""
    return [c * taps + k for c in kept for k in range(taps)]


def refit(gram: torch.Tensor, weight: torch.Tensor, kept: Sequence[int]) -> torch.Tensor:
    """W'_S = argmin ||X W^T - X_S W'_S^T||^2: the normal equations G_SS W'_S^T = G_S: W^T. [out, |S|, K]"""
    out, c, k = weight.shape
    cols = columns(kept, k)
    sol = solve_normal(gram[cols][:, cols], gram[cols] @ weight.double().reshape(out, c * k).T)
    return sol.T.reshape(out, len(kept), k)


def error_ratio(gram: torch.Tensor, weight: torch.Tensor, kept: Sequence[int], new: torch.Tensor) -> float:
    """||X W^T - X_S W'^T||^2 / ||X W^T||^2 over the samples, from G (0 for a consumer that read zeros)."""
    out, c, k = weight.shape
    w = weight.double().reshape(out, c * k)
    diff = w.clone()
    diff[:, columns(kept, k)] -= new.reshape(out, -1)
    yy = float((w @ gram * w).sum())
    return max(float((diff @ gram * diff).sum()), 0.0) / yy if yy > 0 else 0.0


class Regression(Reconstruction):
    name: ClassVar[str] = "regression"
    label: ClassVar[str] = "regression"
    params: ClassVar[type] = RegressionParams
    calibration: ClassVar[int] = 2000

    @classmethod
    def prune(
        cls,
        state: Mapping[str, torch.Tensor],
        spec: ArchSpec,
        target: str,
        params: RegressionParams,
        *,
        model: nn.Module | None = None,
        calibration: Iterable[torch.Tensor] = (),
    ) -> Pruning:
        p = cls.plan(model, spec, target, params)
        stats = patch_grams(model, p.readers, calibration, params.locations) if p.readers else {}
        widths, removals = p.widths, p.emptied()
        full, info = {}, {}
        for r in p.readers:
            s, weight = stats[r.group], state[r.weight].detach().cpu()
            w3 = weight.reshape(weight.shape[0], weight.shape[1], -1)
            rows = s.count * w3.shape[0]  # N: samples x output channels
            kept, alpha, nnz = lasso_select((channel_gram(s.gram, w3) / rows).numpy(), p.keep[r.group])
            removals[r.group] = [c for c in range(widths[r.group]) if c not in set(kept)]
            new = refit(s.gram, w3, kept)
            info[r.group] = {"alpha": alpha, "nonzero": nnz, "error": error_ratio(s.gram, w3, kept, new)}
            full[r.weight] = weight.clone()
            full[r.weight][:, kept] = new.reshape(weight.shape[0], len(kept), *weight.shape[2:]).to(weight.dtype)
        record = {"setting": target, **params.settings[target], "groups": info, "unsupported": p.unsupported}
        return Pruning(removals=removals, record=record, edits=pruned_edits(spec, full, removals))
