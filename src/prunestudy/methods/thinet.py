"""ThiNet (Luo et al., ICCV 2017): remove the channels whose absence the next layer notices least.

A group's channels are read by one consumer (a conv, or a linear layer seen as a 1x1 conv on the pooled
features). At ``locations`` random positions of each calibration image, with a random output channel o
of the consumer each, channel c contributes x_c = sum_k W[o, c, k] * X[c, patch_k] to the consumer's
output y = sum_c x_c (its bias aside). ThiNet removes, greedily, the channel whose addition to the
removed set T keeps ||sum_{c in T} x_c||^2 (over all samples) smallest, until the group keeps its target
width, then rescales the consumer's kept input columns by w = argmin ||y - sum_{c kept} w_c x_c||^2
(the refit goes into :attr:`Pruning.edits`). The record holds, per group, the relative reconstruction
error ||y - y_hat||^2 / ||y||^2 on the samples.

Both sums over samples are quadratic in the chosen set, so only the C x C Gram matrix of the
contributions is accumulated while the calibration batches run: the result is the same as the
reference's explicit sample matrix, without holding it.

A target names a setting: ``{"keep": f}`` keeps ``int(f x width)`` (at least one) channels of every
group whose consumer is a conv or linear layer, except the groups listed in ``"skip"`` (ThiNet-30/50/70
keep 30/50/70 %); ``{"widths": [...]}`` gives every group's width. With ``keep``, a group whose consumer
is neither (a grouped conv, a linear layer reading a flattened map) stays whole and is recorded.

Deviations from the paper and its reference code (docs/deviations.md):

- One shot: every group is selected and refitted from the *unpruned* network's activations, at once.
  The paper prunes layer by layer, fine-tuning (one epoch on ImageNet) before the next layer, so each
  layer's statistics come from the already-pruned network.
- Calibration: 256 training images with ``locations`` = 10 samples each; the reference draws 10 images
  per ImageNet class (10,000 images) with 10 samples each. The locations are drawn by a generator seeded
  per group (the images already vary with the run's seed).
- The consumer's bias, if any, is left as it is; only its kept columns are scaled.
- A linear consumer (Liu's VGG head) is treated as a 1x1 conv on the globally pooled features; the
  paper's VGG variants replace the fully connected layers instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from prunestudy.io.options import Range, Settings
from prunestudy.methods.base import ONESHOT, SETTING, Method, Pruning, check_named_settings
from prunestudy.methods.l1norm import check_widths

if TYPE_CHECKING:
    import torch
    from torch import nn

    from prunestudy.arch import ArchSpec
    from prunestudy.arch.base import Group

SEED = 0  # location draws: group i's generator is seeded SEED + i, so a group's samples never depend on others'


@dataclass(frozen=True)
class ThiNetParams(Settings):
    """``settings``: name -> {"keep": fraction, "skip": [group names]} or {"widths": [per group]};
    ``locations``: samples per calibration image (a position and, for ThiNet, an output channel)."""

    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    locations: Annotated[int, Range(min=1)] = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, s in self.settings.items():
            check_setting(name, s)


def check_setting(name: str, s: Mapping[str, Any]) -> None:
    """A setting's shape, without the model (config validation stays torch-free)."""
    if set(s) not in ({"keep"}, {"keep", "skip"}, {"widths"}):
        raise ValueError(f"setting {name!r} needs 'keep' (and 'skip'), or 'widths'; got {sorted(s)}")
    keep = s.get("keep", 1)
    if isinstance(keep, bool) or not isinstance(keep, int | float) or not 0 < keep <= 1:
        raise ValueError(f"setting {name!r}: keep must be a fraction in (0, 1], got {keep!r}")
    if not all(isinstance(g, str) for g in s.get("skip", ())):
        raise ValueError(f"setting {name!r}: skip lists group names")


def setting_widths(spec: ArchSpec, setting: Mapping[str, Any]) -> list[int]:
    """The width every group keeps under ``setting``, checked against the spec."""
    groups = spec.groups()
    if "widths" in setting:
        if len(setting["widths"]) != len(groups):
            raise ValueError(f"{len(setting['widths'])} widths for the {len(groups)} groups of {spec.spec_id}")
        widths = [int(w) for w in setting["widths"]]
        check_widths(spec, widths)
        return widths
    skip = set(setting.get("skip", ()))
    unknown = skip - {g.name for g in groups}
    if unknown:
        raise ValueError(f"skip names no group of {spec.spec_id}: {sorted(unknown)}")
    # rounded to 9 digits first, so that 0.29 x 100 keeps 29, not 28
    keep = setting["keep"]
    return [g.width if g.name in skip or not g.width else max(1, int(round(g.width * keep, 9))) for g in groups]


# --- the consumer of a group, seen as a convolution, and samples of what it reads -----------------------


@dataclass(frozen=True)
class Reader:
    """A group's consumer as a convolution ([out, C, kh, kw]): which module, how it slides, and the
    group's position in the spec (which seeds its location draws)."""

    index: int
    group: str
    weight: str  # the consumer weight's state name
    module: str
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)


def reader(model: nn.Module, g: Group, index: int) -> Reader | None:
    """The consumer of ``g`` if it is a plain conv or a linear layer reading exactly the group's channels."""
    from torch import nn

    last = g.slices[-1] if g.slices else None
    if last is None or last.dim != 1 or not last.tensor.endswith(".weight"):
        return None
    name = last.tensor.removesuffix(".weight")
    try:
        m = model.get_submodule(name)
    except AttributeError:
        return None
    if isinstance(m, nn.Linear) and m.in_features == g.width:
        return Reader(index, g.name, last.tensor, name)
    plain = isinstance(m, nn.Conv2d) and m.groups == 1 and m.padding_mode == "zeros"
    if plain and m.in_channels == g.width and not isinstance(m.padding, str):
        return Reader(index, g.name, last.tensor, name, m.kernel_size, m.stride, m.padding, m.dilation)
    return None


def patches(
    x: torch.Tensor, r: Reader, out: int, locations: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the consumer reads at ``locations`` random output positions of each image, with a random
    output channel per sample: patches [S, C, kh * kw] for S = N * locations, the channels [S] and
    where each sample lies in the consumer's output, [S, 3] (image, row, column)."""
    import torch
    import torch.nn.functional as F

    if x.dim() == 2:  # a linear layer: one position, the whole input
        x = x[:, :, None, None]
    n, _, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = r.kernel, r.stride, r.padding, r.dilation
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    ys = torch.randint(ho, (n * locations,), generator=gen)
    xs = torch.randint(wo, (n * locations,), generator=gen)
    os = torch.randint(out, (n * locations,), generator=gen)
    img = torch.arange(n).repeat_interleave(locations)
    rows = ys[:, None] * sh + (torch.arange(kh) * dh).repeat_interleave(kw)[None]
    cols = xs[:, None] * sw + (torch.arange(kw) * dw).repeat(kh)[None]
    padded = F.pad(x, (pw, pw, ph, ph))
    p = padded[img[:, None], :, rows, cols].transpose(1, 2)  # advanced indices come first: [S, K, C]
    return p, os, torch.stack([img, ys, xs], 1)


Fold = Callable[[Reader, "torch.Tensor", "torch.Tensor", "torch.Tensor"], None]  # reader, weight, patches, o


def collect(
    model: nn.Module, readers: Sequence[Reader], calibration: Iterable[torch.Tensor], locations: int, fold: Fold
) -> None:
    """Run the calibration batches once, handing each reader's samples to ``fold`` as they are drawn
    (weight [out, C, K], patches [S, C, K], output channels [S]), so no activation is kept."""
    import torch

    handles = []
    for r in readers:
        module = model.get_submodule(r.module)
        gen = torch.Generator().manual_seed(SEED + r.index)

        def hook(m: nn.Module, args: tuple, r: Reader = r, gen: torch.Generator = gen) -> None:
            weight = m.weight.detach().reshape(m.weight.shape[0], m.weight.shape[1], -1)
            p, o, _ = patches(args[0].detach(), r, weight.shape[0], locations, gen)
            fold(r, weight, p, o)

        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for batch in calibration:
                model(batch)
    finally:
        for h in handles:
            h.remove()


@dataclass
class Plan:
    """Which groups a setting prunes: ``keep`` per group (those refitted have a reader), the groups
    emptied outright, and those left whole because their consumer is not a conv or linear layer."""

    keep: dict[str, int]
    readers: list[Reader]
    unsupported: list[str]
    widths: dict[str, int]  # every group's width in the large network

    def emptied(self) -> dict[str, list[int]]:
        """The removals of the groups pruned to nothing (every channel); the refitted ones are added."""
        return {n: list(range(self.widths[n])) for n, k in self.keep.items() if k == 0}


def plan(model: nn.Module | None, spec: ArchSpec, setting: Mapping[str, Any], name: str) -> Plan:
    """The groups ``setting`` prunes and their readers; refuses an explicit width it cannot reach."""
    if model is None:
        raise ValueError(f"{name} reads activations: it needs the network and calibration batches")
    keep, readers, unsupported = {}, [], []
    for i, (g, k) in enumerate(zip(spec.groups(), setting_widths(spec, setting), strict=True)):
        if k >= g.width:
            continue
        r = reader(model, g, i) if k else None
        if k and r is None:
            if "widths" in setting:
                raise ValueError(f"{name} cannot prune group {g.name}: its consumer is not a plain conv or linear")
            unsupported.append(g.name)
            continue
        keep[g.name] = k
        readers += [r] if r else []
    return Plan(keep, readers, unsupported, {g.name: g.width for g in spec.groups()})


class Reconstruction(Method):
    """What ThiNet and He et al.'s regression share: one-shot, to named settings of kept widths, each
    pruned group's consumer refitted from calibration activations (:func:`plan` says which)."""

    kind: ClassVar[str] = ONESHOT
    targets: ClassVar[str] = SETTING
    label: ClassVar[str]  # how messages name the method

    @classmethod
    def check(cls, params: ThiNetParams, spec: ArchSpec, targets: Sequence[Any]) -> None:
        """Each target names a setting, and each setting's widths fit the large network."""
        super().check(params, spec, targets)
        check_named_settings(params.settings, targets, lambda s: setting_widths(spec, s))

    @classmethod
    def plan(cls, model: nn.Module | None, spec: ArchSpec, target: str, params: ThiNetParams) -> Plan:
        """The plan of the setting ``target`` names (refused when there is none)."""
        if target not in params.settings:
            raise ValueError(f"no {cls.label} setting {target!r}; settings are {sorted(params.settings)}")
        return plan(model, spec, params.settings[target], cls.name)


def pruned_edits(
    spec: ArchSpec, full: Mapping[str, torch.Tensor], removals: Mapping[str, list[int]]
) -> dict[str, torch.Tensor]:
    """Refitted tensors, given in the large network's shapes, cut as the removal cuts the network."""
    from prunestudy.pruning.surgery import remove_channels

    return remove_channels(spec, full, removals)[1] if full else {}


# --- ThiNet's selection and refit, on the Gram matrix of the channel contributions -------------------------


def contributions(weight: torch.Tensor, p: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """x_c of every sample: sum_k W[o, c, k] * patch[c, k], as [S, C] (fp64)."""
    return (p.double() * weight.double()[o]).sum(-1)


def removed_energy(h: torch.Tensor, removed: Sequence[int]) -> float:
    """||sum_{c in removed} x_c||^2 over the samples, from the Gram matrix h = x^T x."""
    idx = list(removed)
    return float(h[idx][:, idx].sum())


def greedy(h: torch.Tensor, remove: int) -> list[int]:
    """ThiNet's greedy selection: the removed set grows by the channel keeping its energy smallest (a tie
    removes the earlier channel). ||t + x_j||^2 = t.h.t + 2 (h t)_j + h_jj for the indicator t."""
    import torch

    t = torch.zeros(len(h), dtype=h.dtype)
    removed = []
    for _ in range(remove):
        score = t @ h @ t + 2 * (h @ t) + torch.diagonal(h)
        score[removed] = float("inf")
        j = int(torch.argmin(score))
        removed.append(j)
        t[j] = 1.0
    return removed


def solve_normal(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """The least-squares solution from the normal equations gram @ x = rhs: by Cholesky where the Gram
    matrix is positive definite (a hundred times faster at C k^2 = 2304), else the minimum-norm solution
    (a channel or tap that never fires leaves it singular)."""
    import torch

    factor, info = torch.linalg.cholesky_ex(gram)
    if int(info) == 0:
        return torch.cholesky_solve(rhs, factor)
    return torch.linalg.lstsq(gram, rhs, driver="gelsd").solution


def scales(h: torch.Tensor, kept: Sequence[int]) -> torch.Tensor:
    """w = argmin ||y - x_S w||^2 with y = sum_c x_c: the normal equations h_SS w = h_S: 1."""
    return solve_normal(h[kept][:, kept], h[kept].sum(1, keepdim=True))[:, 0]


def error_ratio(h: torch.Tensor, kept: Sequence[int], w: torch.Tensor) -> float:
    """||y - x_S w||^2 / ||y||^2, expanded in h (0 for a consumer that read only zeros)."""
    yy = float(h.sum())
    err = yy - 2 * float(w @ h[kept].sum(1)) + float(w @ h[kept][:, kept] @ w)
    return max(err, 0.0) / yy if yy > 0 else 0.0


def thinet_grams(
    model: nn.Module, readers: Sequence[Reader], calibration: Iterable[torch.Tensor], locations: int
) -> dict[str, torch.Tensor]:
    """The C x C Gram matrix of the sampled channel contributions, per group."""
    grams: dict[str, torch.Tensor] = {}

    def fold(r: Reader, weight: torch.Tensor, p: torch.Tensor, o: torch.Tensor) -> None:
        x = contributions(weight, p, o)
        grams[r.group] = grams[r.group] + x.T @ x if r.group in grams else x.T @ x

    collect(model, readers, calibration, locations, fold)
    missing = [r.group for r in readers if r.group not in grams]
    if missing:
        raise ValueError(f"no calibration batch reached the consumers of {missing}")
    return grams


class ThiNet(Reconstruction):
    name: ClassVar[str] = "thinet"
    label: ClassVar[str] = "ThiNet"
    params: ClassVar[type] = ThiNetParams
    calibration: ClassVar[int] = 256

    @classmethod
    def prune(
        cls,
        state: Mapping[str, torch.Tensor],
        spec: ArchSpec,
        target: str,
        params: ThiNetParams,
        *,
        model: nn.Module | None = None,
        calibration: Iterable[torch.Tensor] = (),
    ) -> Pruning:
        p = cls.plan(model, spec, target, params)
        grams = thinet_grams(model, p.readers, calibration, params.locations) if p.readers else {}
        widths, removals = p.widths, p.emptied()
        full, errors = {}, {}
        for r in p.readers:
            h = grams[r.group]
            removals[r.group] = sorted(greedy(h, widths[r.group] - p.keep[r.group]))
            kept = [c for c in range(widths[r.group]) if c not in set(removals[r.group])]
            w = scales(h, kept)
            errors[r.group] = error_ratio(h, kept, w)
            full[r.weight] = state[r.weight].clone()
            full[r.weight][:, kept] *= w.to(full[r.weight].dtype).view(-1, *[1] * (full[r.weight].dim() - 2))
        record = {"setting": target, **params.settings[target], "error": errors, "unsupported": p.unsupported}
        return Pruning(removals=removals, record=record, edits=pruned_edits(spec, full, removals))
