"""Shared helpers for the hand-run benchmarks: timing and synthetic in-memory CIFAR-shaped data."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from prunestudy.io.catalog import DATASETS
from prunestudy.training.data import Augment, Batch, Dataset, Split, draw_batches


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def cifar_like(n: int = 5000, seed: int = 0, image_size: int = 32) -> Dataset:
    """Random uint8 images with CIFAR-10's shape and statistics metadata (no download needed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, image_size, image_size), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    i = DATASETS["cifar10"]
    split = Split(x, y)
    return Dataset(
        "cifar10",
        split,
        Split(x[:500], y[:500]),
        Split(x[:500], y[:500]),
        10,
        3,
        image_size,
        i.pixel_max,
        i.mean,
        i.std,
    )


def random_batch(data: Dataset, size: int, aug: Augment, gen: torch.Generator, device: torch.device) -> Batch:
    """A batch of random training indices with its augmentation draws, on ``device``."""
    (batch,) = draw_batches([torch.randint(0, len(data.train), (size,), generator=gen)], aug, gen, device)
    return batch


def report(title: str, rows: list[tuple[str, float]], ratio: tuple[str, float, str]) -> None:
    print(f"\n== {title}")
    for name, value in rows:
        print(f"  {name:<44} {value:12.1f}")
    label, value, target = ratio
    print(f"  {label:<44} {value:12.3f}   (target {target})")
