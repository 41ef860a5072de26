"""Datasets as uint8 tensors in memory, batched by index with vectorised on-device augmentation.

Every dataset becomes three :class:`Split` s. The validation split is carved out of the training
set (stratified, from a fixed ``split_seed``) and serves all selection; the test split serves only
reporting. Normalisation and augmentation happen per batch on the training device, so the hot loop
has no per-sample Python and no DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from prunestudy.io.catalog import DATASETS, held_out


class DataError(RuntimeError):
    """Data that is missing or malformed, with a message that says where it should be."""


@dataclass
class Split:
    x: torch.Tensor  # uint8, N x C x H x W
    y: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Augment:
    """Random crop after padding (``pad`` pixels, ``pad_mode``) and horizontal flip."""

    pad: int = 0
    pad_mode: str = "reflect"
    flip: bool = False


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    in_channels: int
    image_size: int
    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to(self, device: torch.device | str) -> Dataset:
        moved = {k: getattr(self, k).to(device) for k in ("train", "val", "test")}
        return Dataset(**{**self.__dict__, **moved})

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> float, scaled to [0, 1] then standardised per channel."""
        scale, shift = _norm_constants(self.mean, self.std, self.pixel_max, x.device)
        # in place on a fresh copy: ~15x faster on CPU than one broadcasting expression
        return x.to(torch.float32, copy=True).mul_(scale).add_(shift)


@lru_cache(maxsize=16)
def _norm_constants(
    mean: tuple[float, ...], std: tuple[float, ...], pixel_max: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift per channel, made on the device once (not copied there on every batch)."""
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (1 / (pixel_max * s)).to(device), (-m / s).to(device)


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Index into a reflect-padded axis (no edge repeat, as F.pad and torchvision), mapped back to 0..n-1."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


@dataclass(frozen=True)
class Batch:
    """One minibatch: indices into a split and its augmentation draws, all on the training device.

    A whole epoch's batches are drawn on the CPU generator and moved to the device in one copy
    (:func:`draw_batches`), so a training step makes no host-to-device copy and no host sync.
    """

    idx: torch.Tensor
    shift: torch.Tensor | None = None  # 2 x n: row and column offsets of the crop
    flip: torch.Tensor | None = None  # n bools


def _draw(n: int, aug: Augment, gen: torch.Generator) -> list[torch.Tensor]:
    """A batch's crop offsets and flips, in the order the loop has always drawn them (results stay bit-identical)."""
    if not aug.pad and not aug.flip:
        return []
    p = aug.pad
    dy = torch.randint(0, 2 * p + 1, (n,), generator=gen) - p
    dx = torch.randint(0, 2 * p + 1, (n,), generator=gen) - p
    flip = (torch.rand(n, generator=gen) < 0.5).long() if aug.flip else torch.zeros(n, dtype=torch.long)
    return [dy, dx, flip]


def draw_batches(
    orders: list[torch.Tensor], aug: Augment, gen: torch.Generator, device: torch.device | str = "cpu"
) -> list[Batch]:
    """Each batch's augmentation drawn after the whole order (as the step used to draw them, batch by
    batch), packed into one tensor and moved to ``device`` in one copy."""
    packed = torch.stack([torch.stack([idx, *_draw(len(idx), aug, gen)]) for idx in orders])
    if torch.device(device).type == "cuda":
        packed = packed.pin_memory()
    packed = packed.to(device, non_blocking=True)
    if packed.shape[1] == 1:
        return [Batch(b[0]) for b in packed]
    return [Batch(b[0], b[1:3], b[3].bool() if aug.flip else None) for b in packed]


def apply_augment(x: torch.Tensor, aug: Augment, shift: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    """Random-crop (after padding) and flip a whole batch in one index gather, on uint8 or float.

    The padding is never materialised: each output pixel's source index is computed (reflected,
    clamped or masked to zero for constant padding) and the flip reverses the column order, so the
    batch is read once. Apply it before normalising, so constant padding is black as in torchvision.
    ``shift`` and ``flip`` are drawn on a CPU generator (:func:`draw_batches`), so a run is
    reproducible on any device.
    """
    n, c, h, w = x.shape
    dev = x.device
    rows = shift[0][:, None] + torch.arange(h, device=dev)
    cols = shift[1][:, None] + torch.arange(w, device=dev)
    if flip is not None:
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    valid = None
    if aug.pad_mode == "reflect":
        rows, cols = _reflect(rows, h), _reflect(cols, w)
    else:
        if aug.pad_mode == "constant":
            valid = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    flat = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, flat).view(n, c, h, w)
    return out if valid is None else torch.where(valid, out, torch.zeros((), dtype=out.dtype, device=dev))


def stratified_split(y: np.ndarray, fraction: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): ``fraction`` of each class (or that many in all) held out, deterministically."""
    rng = np.random.default_rng(seed)
    n_out = held_out(len(y), fraction)
    held = []
    classes, counts = np.unique(y, return_counts=True)
    quotas = np.floor(counts / len(y) * n_out).astype(int)
    quotas[: n_out - quotas.sum()] += 1  # distribute the rounding remainder
    for c, q in zip(classes, quotas, strict=True):
        idx = np.flatnonzero(y == c)
        held.extend(rng.choice(idx, size=q, replace=False).tolist())
    held = np.sort(np.array(held, dtype=np.int64))
    keep = np.setdiff1d(np.arange(len(y)), held)
    return keep, held


def _split(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(y[idx].astype(np.int64)))


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits (what ``load_digits`` returns), read from its CSV directly.

    Importing ``sklearn.datasets`` pulls in scipy.stats and pandas (about 1.7 s), which every training
    job would pay; finding the package without importing it costs nothing.
    """
    import gzip
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits dataset comes with scikit-learn, which is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",")
    return table[:, :-1].reshape(-1, 1, 8, 8).astype(np.uint8), table[:, -1].astype(np.int64)  # pixels 0..16


def _digits(val: float | int, test: float | int, seed: int) -> tuple[Split, Split, Split]:
    x, y = _digits_arrays()
    rest, test_idx = stratified_split(y, test, seed)
    keep, val_idx = stratified_split(y[rest], val, seed + 1)
    return _split(x, y, rest[keep]), _split(x, y, rest[val_idx]), _split(x, y, test_idx)


def _cifar(name: str, root: str, download: bool, val: float | int, seed: int) -> tuple[Split, Split, Split]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    try:
        train = cls(root, train=True, download=download)
        test = cls(root, train=False, download=download)
    except RuntimeError as err:
        raise DataError(
            f"{name} not found under data.root={root!r}: expected the folder "
            f"{Path(root) / cls.base_folder} (the python version of the dataset, as torchvision extracts it). "
            f"Download it there, or set data.download: true to let torchvision fetch it. ({err})"
        ) from err

    def arrays(ds) -> tuple[np.ndarray, np.ndarray]:
        return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets, dtype=np.int64)

    xtr, ytr = arrays(train)
    keep, val_idx = stratified_split(ytr, val, seed)
    return _split(xtr, ytr, keep), _split(xtr, ytr, val_idx), _split(*arrays(test), np.arange(len(test.targets)))


def load(
    name: str,
    root: str = "data",
    download: bool = False,
    val: float | int = 0.1,
    test: float | int = 0.2,
    split_seed: int = 0,
) -> Dataset:
    """Load ``name`` into memory. ``test`` applies to digits only; CIFAR keeps its official test set."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    i = DATASETS[name]
    splits = _digits(val, test, split_seed) if name == "digits" else _cifar(name, root, download, val, split_seed)
    return Dataset(name, *splits, i.num_classes, i.in_channels, i.image_size, i.pixel_max, i.mean, i.std)


def epoch_batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A seeded permutation cut into full batches; the partial last batch is dropped (BN needs > 1)."""
    perm = torch.randperm(n, generator=gen)
    return list(perm[: n - n % batch_size].split(batch_size)) if n >= batch_size else [perm]
