"""The in-memory batcher (index, normalise, crop+flip in one vectorised step) against torchvision's
DataLoader with the usual per-sample transforms, producing the same CIFAR-shaped batches.

    python benchmarks/bench_batcher.py [--batch 128] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import transforms

from benchmarks.common import cifar_like, report
from prunestudy.training.data import Augment, apply_augment, draw_batches, epoch_batches


class PilDataset(torch.utils.data.Dataset):
    """Like torchvision's CIFAR10: HWC uint8 arrays turned into PIL images per sample."""

    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    data = cifar_like(5000)
    n = len(data.train)

    aug = Augment(pad=4, pad_mode="reflect", flip=True)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for _epoch in range(3):
        for b in draw_batches(epoch_batches(n, args.batch, gen), aug, gen):
            data.normalize(apply_augment(data.train.x[b.idx], aug, b.shift, b.flip))
    ours = 3 * (n - n % args.batch) / (time.perf_counter() - t0)

    tf = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(data.mean, data.std),
        ]
    )
    ds = PilDataset(data.train.x.permute(0, 2, 3, 1).numpy(), data.train.y.numpy(), tf)
    loader = DataLoader(
        ds,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        drop_last=True,
        persistent_workers=args.workers > 0,
    )
    for _ in loader:  # start the workers
        break
    t0 = time.perf_counter()
    for _epoch in range(3):
        for _ in loader:
            pass
    theirs = 3 * (n - n % args.batch) / (time.perf_counter() - t0)
    report(
        f"batches of {args.batch} CIFAR-shaped images with crop+flip+normalise, CPU",
        [("in-memory batcher (img/s)", ours), (f"DataLoader, {args.workers} workers (img/s)", theirs)],
        ("batcher / DataLoader", ours / theirs, ">= 10"),
    )


if __name__ == "__main__":
    main()
