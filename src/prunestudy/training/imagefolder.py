"""ImageNet from ImageFolder-style directories, streamed from disk in seeded, resumable batches.

Layout (nothing is downloaded)::

    <root>/train/<class>/*.JPEG    the training images; the validation split is carved out of them
    <root>/val/<class>/*.JPEG      the official validation set, sorted into class folders: the TEST split

The validation split that serves selection is stratified out of the training images from ``split_seed``
(:func:`prunestudy.training.data.stratified_split`, the same rule as CIFAR), so the official validation
set is touched only for reporting, as the test split of every other dataset.

Transforms follow Liu et al. (the PyTorch ImageNet example): training random-resized-crop ``crop``
(area scale (0.08, 1), aspect (3/4, 4/3)) and horizontal flip; evaluation resize of the shorter side to
``resize`` and centre crop ``crop``. Batches leave the workers as uint8 NCHW (a quarter of float32's
bytes through shared and pinned memory); :meth:`ImageFolderData.normalize` standardises them with the
ImageNet mean/std on the training device, as :meth:`Dataset.normalize` does for the in-memory datasets.

Determinism. The order of an epoch is ``epoch_batches`` on a generator seeded with
``derive_seed(seed, "epoch", epoch)``, exactly as :func:`prunestudy.training.loop.fit` orders the
in-memory sets. Each sample's crop and flip come from its own ``random.Random`` seeded with
``derive_seed(seed, "augment", epoch, index)``: a pure function of (seed, epoch, index into the
training split), so they do not depend on the batch size, the position in the batch, which worker
decoded the image or in what order workers finished. No transform reads a global RNG, and the
DataLoader gets its own generator, so iterating it leaves torch's global RNG untouched. A run resumed
at an epoch (or at batch ``start`` within it) sees the same pixels as an uninterrupted one.

Loading stack, chosen by measurement (``benchmarks/bench_imagenet_data.py`` on a shared 2-core CPU VM,
synthetic 500x375 JPEGs of about 94 kB at quality 90, 224 crops, one process per stack for the per-core
cost): ``torchvision.io`` decoding (libjpeg-turbo straight into a CHW uint8 tensor) with the uint8 tensor
ops of ``torchvision.transforms.v2.functional``, normalised per batch, gave 525 images/s per core against
315 for PIL decoding with the usual ``transforms.v2`` pipeline on PIL images (1.7x): decoding costs the
same in both, but the uint8 antialiased resize is about 3x faster than PIL's on a crop, no HWC->CHW
copy is made, and one vectorised normalisation per batch replaces a float pass per image. Tar shards
brought nothing measurable on a local disk (545 random access, 413 sequential, within the run-to-run
spread); they pay on cluster file systems, where every open is a metadata round trip, and can be added
behind :class:`Index` without touching the transforms or the order. GPU decoding (nvJPEG) is measured by
the benchmark where CUDA is present. ``torchvision.io``'s decoders are deprecated from torchvision 0.29
in favour of TorchCodec: the project pins torchvision <= 0.29.1, and :func:`decode` is the one place to
change when that pin moves.
"""

from __future__ import annotations

import math
import os
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms.v2 import functional as TF

from prunestudy.io import catalog
from prunestudy.training.data import (
    WHOLE,
    DataError,
    Shard,
    _norm_constants,
    derive_seed,
    epoch_batches,
    stratified_split,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTENSIONS = (".jpeg", ".jpg", ".png")  # ImageNet's train set holds a PNG named .JPEG; decode_image reads both
SPLITS = ("train", "val", "test")
LAYOUT = catalog.IMAGEFOLDER_LAYOUT


@dataclass(frozen=True)
class Index:
    """Images of one split: paths relative to ``folder`` and labels.

    The paths live in one fixed-width bytes array rather than a list of str: DataLoader workers
    forked from the main process then read them without touching per-object refcounts, so the pages
    stay shared (a list of 1.28M str objects is copied into every worker, page by page).
    """

    folder: Path
    files: np.ndarray  # bytes, "class/file.JPEG"
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.labels)

    def path(self, i: int) -> Path:
        return self.folder / os.fsdecode(self.files[i])

    def subset(self, idx: np.ndarray) -> Index:
        return Index(self.folder, self.files[idx], self.labels[idx])


def missing_folders(root: str | os.PathLike) -> str | None:
    """What is missing of an ImageFolder dataset under ``root`` (None when both folders hold classes):
    the config check's test (:func:`prunestudy.io.catalog.missing_folders`), so both say the same."""
    return catalog.missing_folders(str(root))


def scan(folder: Path, classes: list[str] | None = None) -> tuple[list[str], Index]:
    """Class names and the images of ``folder``, in sorted order so that every host indexes alike.

    ``classes`` fixes the label of each class name (the test folder uses the training folder's).
    """
    found = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    classes = found if classes is None else classes
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{folder} has class folders that {folder.parent / 'train'} lacks: {unknown[:5]}")
    label = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for c in found:
        names = sorted(e.name for e in os.scandir(folder / c) if e.name.lower().endswith(EXTENSIONS))
        if not names:
            raise DataError(f"{folder / c} holds no images (*.JPEG); the layout is {LAYOUT}")
        files += [os.fsencode(f"{c}/{n}") for n in names]
        labels += [label[c]] * len(names)
    return classes, Index(folder, np.array(files, dtype=bytes), np.array(labels, dtype=np.int64))


def decode(path: Path) -> torch.Tensor:
    """The image at ``path`` as RGB uint8 CHW (greyscale and CMYK JPEGs, and PNGs, converted)."""
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders (module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)


def resized_crop_box(
    height: int, width: int, rng: random.Random, scale: tuple[float, float], ratio: tuple[float, float] = (3 / 4, 4 / 3)
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random-resized crop, torchvision's rule drawn from ``rng``.

    torchvision's ``RandomResizedCrop`` draws from torch's global RNG, which in DataLoader workers is
    seeded per worker, so which crop an image gets would depend on scheduling; this draws the same
    way from a per-sample generator instead.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    in_ratio = width / height  # fallback: the central crop at the nearest allowed aspect
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        h, w = height, round(height * max(ratio))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def train_transform(img: torch.Tensor, crop: int, rng: random.Random, scale: tuple[float, float]) -> torch.Tensor:
    """Random-resized crop to ``crop`` x ``crop`` and a coin-flip horizontal flip, on any device."""
    top, left, h, w = resized_crop_box(img.shape[-2], img.shape[-1], rng, scale)
    out = TF.resized_crop(img, top, left, h, w, [crop, crop], antialias=True)
    return TF.horizontal_flip(out) if rng.random() < 0.5 else out


def eval_transform(img: torch.Tensor, crop: int, resize: int) -> torch.Tensor:
    """Shorter side resized to ``resize``, then the central ``crop`` x ``crop``."""
    return TF.center_crop(TF.resize(img, [resize], antialias=True), [crop, crop])


@dataclass(frozen=True)
class Transform:
    crop: int = 224
    resize: int = 256
    scale: tuple[float, float] = (0.08, 1.0)


class _Images(torch.utils.data.Dataset):
    """Decoded, transformed images of one split, keyed by (index, epoch); epoch None: no augmentation."""

    def __init__(self, index: Index, tf: Transform, seed: int):
        self.index, self.tf, self.seed = index, tf, seed

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: tuple[int, int | None]) -> tuple[torch.Tensor, int]:
        i, epoch = key
        img = decode(self.index.path(i))
        if epoch is None:
            out = eval_transform(img, self.tf.crop, self.tf.resize)
        else:
            out = train_transform(
                img, self.tf.crop, random.Random(derive_seed(self.seed, "augment", epoch, i)), self.tf.scale
            )
        return out, int(self.index.labels[i])


class _Order(Sampler[list[tuple[int, int | None]]]):
    """A fixed list of batches of (index, epoch) keys: the DataLoader's batch_sampler."""

    def __init__(self, batches: list[torch.Tensor], epoch: int | None):
        self.batches, self.epoch = batches, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for b in self.batches:
            yield [(i, self.epoch) for i in b.tolist()]


class _Collate:
    """Stack to uint8 NCHW (or float, standardised, when ``norm`` holds the mean and std)."""

    def __init__(self, norm: tuple[tuple[float, ...], tuple[float, ...]] | None):
        self.norm = norm

    def __call__(self, items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([img for img, _ in items])
        y = torch.tensor([label for _, label in items], dtype=torch.int64)
        return (x if self.norm is None else normalize(x, *self.norm)), y


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 batch -> float, scaled to [0, 1] then standardised per channel (in place on a copy, fast)."""
    scale, shift = _norm_constants(mean, std, 255.0, x.device)
    return x.to(torch.float32, copy=True).mul_(scale).add_(shift)


class ImageFolderData:
    """An ImageFolder dataset's three splits as path indices, and seeded DataLoaders over them.

    Memory is O(batch): only the index (about 40 bytes an image) is held; workers decode on demand.
    """

    name = "imagenet"
    in_channels = 3
    pixel_max = 255.0

    def __init__(
        self,
        root: str | os.PathLike,
        val_size: float | int,
        split_seed: int = 0,
        crop: int = 224,
        resize: int = 256,
        scale: tuple[float, float] = (0.08, 1.0),
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        workers: int = 0,
        eval_batch_size: int = 256,
    ):
        if problem := missing_folders(root):
            raise DataError(problem)
        root = Path(root)
        self.class_names, full = scan(root / "train")
        _, self.test = scan(root / "val", self.class_names)
        keep, held = stratified_split(full.labels, val_size, split_seed)
        self.train, self.val = full.subset(keep), full.subset(held)
        self._check_every_class(val_size)
        self.transform = Transform(crop, resize, scale)
        self.mean, self.std, self.workers = mean, std, workers
        self.eval_batch_size = eval_batch_size  # a worker decodes a whole batch: small ones keep the pipe full

    def _check_every_class(self, val_size: float | int) -> None:
        """Selection on a split that lacks a class is silently biased: refuse it."""
        n = len(self.class_names)
        for name, split in (("train", self.train), ("val", self.val)):
            if len(np.unique(split.labels)) < n:
                raise DataError(
                    f"val_size={val_size} leaves some of the {n} classes out of the {name} split; "
                    f"choose a val_size of at least one image per class in each"
                )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return self.transform.crop

    def split(self, name: str) -> Index:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {SPLITS}")
        return getattr(self, name)

    def batches(
        self,
        split: str,
        batch_size: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        train: bool | None = None,
        shard: Shard = WHOLE,
    ) -> list[torch.Tensor]:
        """The indices of each batch: training order is a seeded permutation cut into full batches
        (as :func:`loop.fit`), evaluation order is the index order with a partial last batch.

        ``shard``: this process's rows of every global training batch, or its contiguous part of the
        split for evaluation. A sample's crop and flip depend on its index alone, so a rank's images are
        pixel for pixel the rows one process would have in the same batch.
        """
        n = len(self.split(split))
        if train if train is not None else split == "train":
            order = epoch_batches(n, batch_size, torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch)))
            return [shard.take(b) for b in order]
        return list(shard.part(n).split(batch_size))

    def loader(
        self,
        split: str,
        batch_size: int,
        *,
        seed: int = 0,
        epoch: int = 0,
        workers: int = 0,
        train: bool | None = None,
        normalize: bool = False,
        pin_memory: bool = False,
        start: int = 0,
        shard: Shard = WHOLE,
    ) -> DataLoader:
        """One epoch of ``split`` as (x, y) batches: x uint8 NCHW (float, standardised, if ``normalize``).

        ``train`` (default: the train split) draws the epoch's order and each sample's crop and flip
        from ``seed`` and ``epoch``; otherwise the order is fixed and the transform is resize + centre
        crop. ``start`` skips the first batches without decoding them, to resume within an epoch;
        ``shard`` keeps this process's part of each (:meth:`batches`).
        """
        train = train if train is not None else split == "train"
        order = self.batches(split, batch_size, seed=seed, epoch=epoch, train=train, shard=shard)[start:]
        return DataLoader(
            _Images(self.split(split), self.transform, seed),
            batch_sampler=_Order(order, epoch if train else None),
            num_workers=workers,
            collate_fn=_Collate((self.mean, self.std) if normalize else None),
            pin_memory=pin_memory,
            generator=torch.Generator().manual_seed(derive_seed(seed, "workers", epoch)),  # not the global RNG
            prefetch_factor=2 if workers else None,
        )

    def images(self, split: str, idx: torch.Tensor) -> torch.Tensor:
        """Images ``idx`` of ``split`` with the evaluation transform, standardised, on the CPU, in one batch."""
        order = _Order([idx], None)  # no epoch: resize and centre crop, whatever the split
        images = DataLoader(_Images(self.split(split), self.transform, 0), batch_sampler=order,
                            collate_fn=_Collate((self.mean, self.std)))  # fmt: skip
        ((x, _),) = list(images)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """A uint8 batch from :meth:`loader`, standardised on whatever device it now is."""
        return normalize(x, self.mean, self.std)

    def to(self, device: torch.device | str) -> ImageFolderData:
        """Itself: images reach the device batch by batch (the in-memory :class:`Dataset` moves whole)."""
        return self

    def size(self, split: str) -> int:
        return len(self.split(split))

    def train_batches(
        self, epoch: int, batch_size: int, seed: int, device: torch.device | str, shard: Shard = WHOLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """An epoch of training batches on ``device``, normalised and channels_last, as the step wants them
        (``batch_size`` is the global batch; ``shard`` keeps this process's rows of each)."""
        loader = self.loader("train", batch_size, seed=seed, epoch=epoch, shard=shard, **self._io(device))
        yield from self._on(device, loader)

    def eval_batches(
        self, split: str, batch_size: int, device: torch.device | str, shard: Shard = WHOLE
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``split`` (``shard``'s part of it) in index order, unaugmented, on ``device``."""
        yield from self._on(device, self.loader(split, batch_size, train=False, shard=shard, **self._io(device)))

    def _io(self, device: torch.device | str) -> dict:
        return {"workers": self.workers, "pin_memory": torch.device(device).type == "cuda"}

    def _on(self, device: torch.device | str, loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """uint8 crosses to the device (a quarter of float's bytes), and is normalised there."""
        for x, y in loader:
            x = self.normalize(x.to(device, non_blocking=True))
            yield x.contiguous(memory_format=torch.channels_last), y.to(device, non_blocking=True)
