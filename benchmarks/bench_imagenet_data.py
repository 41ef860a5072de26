"""ImageNet loading stacks compared on the same synthetic JPEGs: which one should feed training?

Every stack delivers the same thing per epoch: float32 NCHW batches of ``--crop`` random-resized crops
(scale (0.08, 1)) with a horizontal flip, standardised by the ImageNet mean/std, on the CPU (the GPU
stack on the GPU). Stacks:

  a  PIL decode + ``torchvision.transforms.v2`` on PIL images, in a DataLoader (the PyTorch ImageNet example)
  b  ``torchvision.io.read_file`` + ``decode_jpeg`` on the CPU + v2 tensor transforms, in a DataLoader
  m  this project's ``ImageFolderData.loader`` (b's decoding, seeded per sample; uint8 out, normalised after)
  c  nvJPEG: bytes read in DataLoader workers, ``decode_jpeg(..., device="cuda")`` on the batch, crops on
     the GPU (only with CUDA; otherwise reported as skipped)
  d  tar shards of ``--shard`` images (uncompressed, member ``<index>.<class>.jpg``), read sequentially,
     one shard stream per worker, shard order and a shuffle buffer seeded per epoch
  e  the same shards read by random access (member offsets indexed once, ``os.pread``): d's few files,
     with the exact per-epoch permutation of m

NVIDIA DALI is not installable here (it is not on PyPI: NVIDIA ships it from its own package index, which
this machine cannot reach, and for CUDA hosts only); it is not measured.

The data: ``--images`` synthetic photos of 500x375 (ImageNet's typical size) in ``--classes`` class
folders, JPEG quality 90, written once to a temporary folder. Each is a sum of random-noise octaves
(4 to 250 cells across) plus pixel noise, so that it compresses like a photograph (about 94 kB each,
ImageNet's mean is about 110 kB) rather than like flat colour, which would decode several times faster.
The files are in the page cache after the first pass, as a hot training set on local disk would be;
on a network file system the per-file opens cost more, which the shard rows avoid.

Timing: every stack runs one whole epoch per repeat (worker start included, as each training epoch
pays it), repeats interleaved across stacks so that drift in the shared machine hits all alike; the
table gives the median and the min-max spread of images/s, and images/s per core, where the cores are
those the stack can use (its workers, capped at the CPUs; 1 without workers).

    python benchmarks/bench_imagenet_data.py [--images 320] [--workers 2] [--repeats 5] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tarfile
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset
from torchvision.io import decode_jpeg, read_file
from torchvision.transforms import v2

from prunestudy.training.imagefolder import IMAGENET_MEAN, IMAGENET_STD, ImageFolderData, normalize, train_transform

warnings.filterwarnings("ignore", message="The image decoding", category=DeprecationWarning)


def photo(seed: int, width: int = 500, height: int = 375) -> Image.Image:
    """A synthetic image with a photograph's spread of spatial frequencies (see the module docstring)."""
    g = np.random.default_rng(seed)
    acc = np.full((height, width, 3), 120.0, np.float32)
    for cells, amp in ((4, 60), (16, 30), (64, 18), (250, 16)):
        small = g.normal(0, amp, (max(2, cells * height // width), cells, 3)).astype(np.float32)
        acc += np.stack([np.asarray(Image.fromarray(small[..., c]).resize((width, height), 3)) for c in range(3)], -1)
    acc += g.normal(0, 12, acc.shape)
    return Image.fromarray(acc.clip(0, 255).astype(np.uint8))


def write_folders(root: Path, images: int, classes: int) -> None:
    """<root>/train/<class>/*.JPEG and a small <root>/val, the layout ImageFolderData reads."""
    for i in range(images):
        d = root / "train" / f"n{i % classes:08d}"
        d.mkdir(parents=True, exist_ok=True)
        photo(i).save(d / f"img_{i:06d}.JPEG", quality=90)
    for c in range(classes):
        d = root / "val" / f"n{c:08d}"
        d.mkdir(parents=True, exist_ok=True)
        photo(10**6 + c).save(d / "val_0.JPEG", quality=90)


def write_shards(data: ImageFolderData, out: Path, per_shard: int) -> list[Path]:
    """Uncompressed tars of ``per_shard`` training images each, member ``<index>.<class>.jpg``."""
    out.mkdir()
    shards = []
    for s, start in enumerate(range(0, len(data.train), per_shard)):
        path = out / f"shard-{s:05d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(start, min(start + per_shard, len(data.train))):
                tar.add(data.train.path(i), arcname=f"{i:08d}.{data.train.labels[i]}.jpg")
        shards.append(path)
    return shards


def norm(x: torch.Tensor) -> torch.Tensor:
    return normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def from_bytes(raw: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


class Files(torch.utils.data.Dataset):
    """Stacks a and b: one image file per item, decoded by ``read`` and transformed by ``tf``."""

    def __init__(self, data: ImageFolderData, read: Callable, tf: Callable):
        self.data, self.read, self.tf = data, read, tf

    def __len__(self) -> int:
        return len(self.data.train)

    def __getitem__(self, i: int):
        return self.tf(self.read(self.data.train.path(i))), int(self.data.train.labels[i])


def pil_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def stack_a(data: ImageFolderData, crop: int) -> Callable[[int, int, int], DataLoader]:
    tf = v2.Compose(
        [
            v2.RandomResizedCrop(crop, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return lambda batch, workers, epoch: _loader(Files(data, pil_rgb, tf), batch, workers, epoch)


def stack_b(data: ImageFolderData, crop: int) -> Callable[[int, int, int], DataLoader]:
    tf = v2.Compose(
        [
            v2.RandomResizedCrop(crop, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return lambda batch, workers, epoch: _loader(
        Files(data, lambda p: decode_jpeg(read_file(str(p))), tf), batch, workers, epoch
    )


def _loader(ds, batch: int, workers: int, epoch: int, collate: Callable | None = None) -> DataLoader:
    g = torch.Generator().manual_seed(epoch)
    return DataLoader(
        ds, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers, generator=g, collate_fn=collate
    )


def stack_m(data: ImageFolderData) -> Callable[[int, int, int], Iterator]:
    def epoch_of(batch: int, workers: int, epoch: int) -> Iterator:
        for x, y in data.loader("train", batch, seed=0, epoch=epoch, workers=workers):
            yield norm(x), y

    return epoch_of


def _bytes_batch(items: list) -> tuple[list[torch.Tensor], torch.Tensor]:
    return [b for b, _ in items], torch.tensor([y for _, y in items])


class Bytes(torch.utils.data.Dataset):
    """Stack c's workers: only the encoded bytes, so that the GPU decodes."""

    def __init__(self, data: ImageFolderData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data.train)

    def __getitem__(self, i: int):
        return read_file(str(self.data.train.path(i))), int(self.data.train.labels[i])


def stack_c(data: ImageFolderData, crop: int) -> Callable[[int, int, int], Iterator]:
    def epoch_of(batch: int, workers: int, epoch: int) -> Iterator:
        loader = _loader(Bytes(data), batch, workers, epoch, collate=_bytes_batch)
        for k, (raw, y) in enumerate(loader):
            imgs = decode_jpeg(raw, device="cuda")
            rngs = [random.Random(epoch * 10**6 + k * batch + j) for j in range(len(imgs))]
            x = torch.stack([train_transform(im, crop, r, (0.08, 1.0)) for im, r in zip(imgs, rngs, strict=True)])
            yield norm(x), y.cuda(non_blocking=True)
        torch.cuda.synchronize()

    return epoch_of


class Shards(IterableDataset):
    """Stack d: each worker streams its share of the shards in a seeded order through a shuffle buffer."""

    def __init__(self, shards: list[Path], crop: int, epoch: int, buffer: int = 64):
        self.shards, self.crop, self.epoch, self.buffer = shards, crop, epoch, buffer

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        rng = random.Random(self.epoch * 1000 + wid)
        mine = self.shards[wid::nw]
        rng.shuffle(mine)
        buf: list = []
        for shard in mine:
            with tarfile.open(shard, "r|") as tar:  # sequential: one stream, no seeks
                for member in tar:
                    buf.append((tar.extractfile(member).read(), int(member.name.split(".")[1])))
                    if len(buf) >= self.buffer:
                        yield self._item(buf.pop(rng.randrange(len(buf))), rng)
        rng.shuffle(buf)
        for item in buf:
            yield self._item(item, rng)

    def _item(self, item: tuple[bytes, int], rng: random.Random):
        raw, y = item
        return norm(train_transform(decode_jpeg(from_bytes(raw)), self.crop, rng, (0.08, 1.0))[None])[0], y


def stack_d(shards: list[Path], crop: int) -> Callable[[int, int, int], DataLoader]:
    return lambda batch, workers, epoch: DataLoader(
        Shards(shards, crop, epoch), batch_size=batch, drop_last=True, num_workers=workers
    )


class ShardIndex(torch.utils.data.Dataset):
    """Stack e: members of the shards by (shard, offset, size), read with ``os.pread``."""

    def __init__(self, shards: list[Path], crop: int, epoch: int):
        self.shards, self.crop, self.epoch = shards, crop, epoch
        self.members = []
        for s, path in enumerate(shards):
            with tarfile.open(path) as tar:
                self.members += [(s, m.offset_data, m.size, int(m.name.split(".")[1])) for m in tar.getmembers()]
        self.fds: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.members)

    def __getitem__(self, i: int):
        s, offset, size, y = self.members[i]
        if s not in self.fds:  # opened once per worker
            self.fds[s] = os.open(self.shards[s], os.O_RDONLY)
        img = decode_jpeg(from_bytes(os.pread(self.fds[s], size, offset)))
        return norm(train_transform(img, self.crop, random.Random(self.epoch * 10**6 + i), (0.08, 1.0))[None])[0], y


def stack_e(shards: list[Path], crop: int) -> Callable[[int, int, int], DataLoader]:
    index = ShardIndex(shards, crop, 0)
    return lambda batch, workers, epoch: _loader(index, batch, workers, epoch)


def run_epoch(make: Callable, batch: int, workers: int, epoch: int) -> tuple[int, float, float]:
    """Images delivered, seconds for the whole epoch and seconds to the first batch (worker start)."""
    t0 = time.perf_counter()
    n, first = 0, None
    for x, _ in make(batch, workers, epoch):
        n += len(x)
        first = first or time.perf_counter() - t0
    return n, time.perf_counter() - t0, first


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=320)
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--crop", type=int, default=224)
    p.add_argument("--shard", type=int, default=64, help="images per tar shard")
    args = p.parse_args()
    torch.set_num_threads(1)  # a worker's share; DataLoader workers run with one thread too
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_folders(root / "imagenet", args.images, args.classes)
        data = ImageFolderData(root / "imagenet", val_size=args.classes, crop=args.crop, resize=args.crop * 8 // 7)
        shards = write_shards(data, root / "shards", args.shard)
        sizes = [data.train.path(i).stat().st_size for i in range(len(data.train))]
        print(
            f"{len(data.train)} training JPEGs, 500x375 q90, mean {np.mean(sizes) / 1024:.0f} kB, "
            f"{len(shards)} shards; made in {time.perf_counter() - t0:.1f} s; {cpus} CPUs; torch {torch.__version__}"
        )
        stacks = {
            "a PIL + transforms.v2": stack_a(data, args.crop),
            "b tv.io decode_jpeg (CPU) + v2 tensor": stack_b(data, args.crop),
            "m ImageFolderData.loader (b, seeded)": stack_m(data),
            "d tar shards, sequential": stack_d(shards, args.crop),
            "e tar shards, random access": stack_e(shards, args.crop),
        }
        if torch.cuda.is_available():
            stacks["c nvJPEG decode_jpeg(device=cuda)"] = stack_c(data, args.crop)
        else:
            print("c nvJPEG (decode_jpeg on cuda): skipped, CUDA is not available")
        print("DALI: not measured (not on PyPI; NVIDIA's own index is unreachable here, and it needs CUDA)")
        configs = [(name, w) for name in stacks for w in sorted({0, args.workers})]
        for name, w in configs:  # warm the page cache and the code paths
            run_epoch(stacks[name], args.batch, w, 0)
        rates: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
        firsts: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
        for r in range(args.repeats):
            for name, w in configs:
                n, s, first = run_epoch(stacks[name], args.batch, w, r + 1)
                rates[name, w].append(n / s)
                firsts[name, w].append(first)
        report(rates, firsts, cpus)


def report(rates: dict, firsts: dict, cpus: int) -> None:
    print(
        f"\n{'stack':<40} {'workers':>7} {'img/s median':>12} {'(min-max)':>12} {'img/s/core':>10} {'1st batch s':>11}"
    )
    for (name, w), rs in rates.items():
        med = statistics.median(rs)
        cores = min(max(w, 1), cpus)
        spread = f"({min(rs):.0f}-{max(rs):.0f})"
        first = statistics.median(firsts[name, w])
        print(f"{name:<40} {w:>7} {med:12.1f} {spread:>12} {med / cores:10.1f} {first:11.2f}")


if __name__ == "__main__":
    main()
