"""Datasets as uint8 tensors in memory, batched by index with vectorised on-device augmentation.

Every dataset becomes three :class:`Split` s. The validation split is carved out of the training
set (stratified, from a fixed ``split_seed``) and serves all selection; the test split serves only
reporting. Normalisation and augmentation happen per batch on the training device, so the hot loop
has no per-sample Python and no DataLoader workers.

The training loop reads any data source through :class:`Batches`: :class:`InMemory` serves these
datasets, :class:`~prunestudy.training.imagefolder.ImageFolderData` streams ImageNet from disk (what
:func:`load` returns for ``imagenet``). Under data-parallel training a :class:`Shard` says which rows
of every global batch this process computes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from prunestudy.io.catalog import DATASETS, held_out

if TYPE_CHECKING:
    from prunestudy.training.imagefolder import ImageFolderData


class DataError(RuntimeError):
    """Data that is missing or malformed, with a message that says where it should be."""


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from a run's identity, e.g. ``derive_seed(seed, "init", arm)``.

    Defined here rather than in the loop so that every data source (in memory, ImageFolder) orders an
    epoch from the same seed without importing the loop (also importable from ``training.loop``).
    """
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


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

    def shard(self, shard: Shard) -> Batch:
        """This process's rows of the batch, with their own augmentation draws (itself in one process)."""
        if shard.world == 1:
            return self
        shift = None if self.shift is None else shard.take(self.shift, dim=1)
        return Batch(shard.take(self.idx), shift, None if self.flip is None else shard.take(self.flip))


@dataclass(frozen=True)
class Shard:
    """Which part of the data this process computes under data-parallel training (``rank`` of ``world``).

    Training: every rank draws the same global batch, in the order one process draws it, and keeps rows
    ``[rank * b / world, (rank + 1) * b / world)``: the shards are disjoint and cover the batch, so the
    world size decides who computes a sample, never which samples a step sees. Evaluation: contiguous,
    near-equal parts of the split's index range (they need not be equal: correct counts are summed).
    """

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} is not among the {self.world} processes")

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``; refuses a batch that does not split evenly."""
        if n % self.world:
            raise ValueError(
                f"a batch of {n} does not split evenly over {self.world} processes; "
                f"choose a batch size that is a multiple of the number of processes (GPUs)"
            )
        per = n // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def take(self, t: torch.Tensor, dim: int = 0) -> torch.Tensor:
        """This rank's rows of ``t`` along ``dim`` (the batch axis)."""
        if self.world == 1:
            return t
        rows = self.rows(t.shape[dim])
        return t.narrow(dim, rows.start, rows.stop - rows.start)

    def part(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """This rank's indices of a split of ``n`` images, for evaluation (all of them in one process)."""
        idx = torch.arange(n, device=device)
        return idx if self.world == 1 else idx.tensor_split(self.world)[self.rank]


WHOLE = Shard()  # one process: every row of every batch


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


def prepare(data: Dataset, split: Split, batch: Batch, aug: Augment | None = None) -> torch.Tensor:
    """Gather the batch, augment the raw pixels (when it has draws), normalise, and lay out channels_last."""
    raw = split.x[batch.idx]
    if aug is not None and batch.shift is not None:
        raw = apply_augment(raw, aug, batch.shift, batch.flip)
    return data.normalize(raw).contiguous(memory_format=torch.channels_last)


class Batches(Protocol):
    """A data source the training loop only iterates: ready (x, y) batches on the device, x normalised
    and channels_last, so the loop need not know whether images live in memory or on disk.

    ``train_batches`` depends only on (epoch, batch_size, seed) (and the shard), never on earlier calls:
    that is what makes a resumed run bit-identical. ``batch_size`` is the global batch; ``shard`` keeps
    this process's rows of each (:class:`Shard`). ``eval_batches`` covers the shard's part of ``split``
    in index order, unaugmented, with a partial last batch, of ``eval_batch_size`` images.
    """

    eval_batch_size: int

    def size(self, split: str) -> int: ...

    def train_batches(
        self, epoch: int, batch_size: int, seed: int, device: torch.device | str, shard: Shard = WHOLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def eval_batches(
        self, split: str, batch_size: int, device: torch.device | str, shard: Shard = WHOLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class InMemory:
    """A :class:`Dataset` (already on the device) as :class:`Batches`, with exactly the generator calls
    the loop has always made: one generator per epoch seeded from ``derive_seed(seed, "epoch", epoch)``
    draws the permutation and then every batch's augmentation (:func:`draw_batches`), so one process's
    results stay bit-identical and every rank of a data-parallel job draws the same global batches."""

    data: Dataset
    aug: Augment = Augment()
    eval_batch_size: int = 1000

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return getattr(self.data, name)

    def size(self, split: str) -> int:
        return len(self.split(split))

    def train_batches(
        self, epoch: int, batch_size: int, seed: int, device: torch.device | str, shard: Shard = WHOLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gen = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
        train = self.data.train
        for batch in draw_batches(epoch_batches(len(train), batch_size, gen), self.aug, gen, device):
            mine = batch.shard(shard)
            yield prepare(self.data, train, mine, self.aug), train.y[mine.idx]

    def eval_batches(
        self, split: str, batch_size: int, device: torch.device | str, shard: Shard = WHOLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        s = self.split(split)
        for idx in shard.part(len(s), device).split(batch_size):
            yield prepare(self.data, s, Batch(idx)), s.y[idx]


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
    options: Mapping[str, Any] | None = None,
) -> Dataset | ImageFolderData:
    """Load ``name``: digits and CIFAR into memory, ImageNet as an index of its files that streams batches.

    ``test`` applies to digits only; CIFAR and ImageNet keep their official test (ImageNet: val) sets.
    ``options`` are :class:`~prunestudy.training.imagefolder.ImageFolderData`'s (crop, resize, workers),
    for ImageNet only; nothing of ImageNet is downloaded, whatever ``download`` says.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    if name == "imagenet":
        # imported here: it needs torchvision's decoders, which the in-memory datasets never load
        from prunestudy.training.imagefolder import ImageFolderData

        return ImageFolderData(root, val, split_seed, **dict(options or {}))
    if options:
        raise DataError(f"data options {sorted(options)} apply to imagenet only, not {name}")
    i = DATASETS[name]
    splits = _digits(val, test, split_seed) if name == "digits" else _cifar(name, root, download, val, split_seed)
    return Dataset(name, *splits, i.num_classes, i.in_channels, i.image_size, i.pixel_max, i.mean, i.std)


def epoch_batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A seeded permutation cut into full batches; the partial last batch is dropped (BN needs > 1)."""
    perm = torch.randperm(n, generator=gen)
    return list(perm[: n - n % batch_size].split(batch_size)) if n >= batch_size else [perm]
