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
    size: int  # images the splits are carved from (digits: all; CIFAR: the official training set)
    smallest_class: int  # images of the rarest class among them
    test_size: int | None = None  # the official test set (None: held out of ``size`` by data.test_size)


# what torchvision's CIFAR loaders read, under data.root
FILES: dict[str, tuple[str, ...]] = {
    "cifar10": tuple(
        f"cifar-10-batches-py/{f}" for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
    ),
    "cifar100": ("cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"),
}


# ImageFolder datasets: the folders that must hold one folder of images per class, under data.root
FOLDERS: dict[str, tuple[str, ...]] = {"imagenet": ("train", "val")}
IMAGEFOLDER_LAYOUT = (
    "<root>/train/<class>/*.JPEG and <root>/val/<class>/*.JPEG (the official val set sorted into class folders)"
)


def missing_folders(root: str, folders: tuple[str, ...] = FOLDERS["imagenet"], name: str = "imagenet") -> str | None:
    """What is missing of an ImageFolder dataset under ``root`` (None when every folder holds classes).

    Checks directories only (not the images), so it is cheap enough for the config check before any job.
    """
    from pathlib import Path

    for sub in folders:
        folder = Path(root) / sub
        if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
            what = "is not a folder" if not folder.is_dir() else "holds no class folders"
            return (
                f"{name} not found under data.root={str(root)!r}: expected the folder {folder} ({what}). "
                f"The layout is {IMAGEFOLDER_LAYOUT}. Nothing is downloaded: obtain ImageNet (ILSVRC2012) from "
                "image-net.org and arrange it this way."
            )
    return None


def missing_files(data: dict) -> str | None:
    """What is missing of the configured dataset under ``data.root`` (None when complete or downloadable).

    An ImageFolder dataset (ImageNet) is never downloadable: its folders are checked whatever
    ``data.download`` says.
    """
    from pathlib import Path

    if data["name"] in FOLDERS:
        return missing_folders(data["root"], FOLDERS[data["name"]], data["name"])
    wanted = FILES.get(data["name"], ())
    missing = [f for f in wanted if not (Path(data["root"]) / f).is_file()]
    if not missing or data["download"]:
        return None
    folder = Path(data["root"]) / missing[0].split("/")[0]
    return (
        f"{data['name']} is missing {len(missing)} of its {len(wanted)} files under data.root={data['root']!r} "
        f"(first: {missing[0]}). Put the python version of the dataset in {folder}/ (as torchvision extracts "
        "it), or set data.download: true to let torchvision fetch it."
    )


def held_out(n: int, size: float) -> int:
    """How many of ``n`` images a split of ``size`` takes: a fraction in (0, 1) or a whole count."""
    if 0 < size < 1:
        return round(size * n)
    if size >= 1 and float(size).is_integer():
        return int(size)
    raise ValueError(f"{size} is neither a fraction in (0, 1) nor a whole count")


def count_test_images(data: dict) -> int:
    """How many images a study's test errors are counted over: one of them is the errors' resolution."""
    info = DATASETS[data["name"]]
    return held_out(info.size, data["test_size"]) if info.test_size is None else info.test_size


DATASETS: dict[str, DatasetInfo] = {
    # digits: pixel values 0..16; mean/std measured on the whole set
    "digits": DatasetInfo(10, 1, 8, 16, (0.30,), (0.38,), 1797, 174),
    # CIFAR: Crowley et al.'s recipe A statistics, one pipeline everywhere (docs/deviations.md)
    "cifar10": DatasetInfo(
        10,
        3,
        32,
        255,
        (125.3 / 255, 123.0 / 255, 113.9 / 255),
        (63.0 / 255, 62.1 / 255, 66.7 / 255),
        50000,
        5000,
        10000,
    ),
    "cifar100": DatasetInfo(
        100,
        3,
        32,
        255,
        (129.3 / 255, 124.1 / 255, 112.4 / 255),
        (68.2 / 255, 65.4 / 255, 70.4 / 255),
        50000,
        500,
        10000,
    ),
    # ImageNet (ILSVRC2012): 1,281,167 training images (the rarest class has 732), 50,000 val images used as
    # the test split; torchvision's mean/std, 224 crops (training random-resized, evaluation centred)
    "imagenet": DatasetInfo(1000, 3, 224, 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 1281167, 732, 50000),
}
