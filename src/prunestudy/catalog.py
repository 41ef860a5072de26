"""What each supported dataset is, without importing torch (the Snakefile and config checks use it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    num_classes: int
    in_channels: int
    image_size: int
    pixel_max: float
    mean: tuple[float, ...]
    std: tuple[float, ...]


DATASETS: dict[str, DatasetInfo] = {
    # digits: pixel values 0..16; mean/std measured on the whole set
    "digits": DatasetInfo(10, 1, 8, 16, (0.30,), (0.38,)),
    # CIFAR: Crowley et al.'s recipe A statistics, one pipeline everywhere (STUDY.md section 6.8)
    "cifar10": DatasetInfo(
        10, 3, 32, 255, (125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)
    ),
    "cifar100": DatasetInfo(
        100, 3, 32, 255, (129.3 / 255, 124.1 / 255, 112.4 / 255), (68.2 / 255, 65.4 / 255, 70.4 / 255)
    ),
}
