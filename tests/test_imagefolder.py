"""The ImageFolder (ImageNet) data path on a tiny dataset in the real on-disk format: JPEGs in class folders."""

import random
import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from prunestudy.training.data import DataError
from prunestudy.training.imagefolder import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageFolderData,
    decode,
    resized_crop_box,
    train_transform,
)

CLASSES, PER_CLASS, PER_VAL_CLASS = 4, 6, 2
SMALL = {"crop": 32, "resize": 36}


def _jpeg(path, seed: int, mode: str = "RGB") -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, quality=90)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """<root>/train/<class>/*.JPEG (one greyscale image, as ImageNet has) and <root>/val/<class>/*.JPEG."""
    root = tmp_path_factory.mktemp("imagenet")
    for offset, (split, n) in enumerate((("train", PER_CLASS), ("val", PER_VAL_CLASS))):
        for c in range(CLASSES):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for i in range(n):
                mode = "L" if (split, c, i) == ("train", 0, 0) else "RGB"
                _jpeg(folder / f"{split}_{c}_{i}.JPEG", 1000 * offset + 10 * c + i, mode)
    return root


@pytest.fixture(scope="module")
def data(root):
    return ImageFolderData(root, val_size=8, split_seed=0, **SMALL)


def _all(loader) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*loader, strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_the_validation_split_is_stratified_out_of_the_training_images(root, data):
    assert (len(data.train), len(data.val)) == (CLASSES * PER_CLASS - 8, 8)
    assert np.bincount(data.val.labels).tolist() == [2] * CLASSES  # every class in both, sizes exact
    assert np.bincount(data.train.labels).tolist() == [PER_CLASS - 2] * CLASSES
    assert not set(data.train.files) & set(data.val.files)
    assert data.train.folder == data.val.folder == root / "train"
    assert data.class_names == [f"n{c:08d}" for c in range(CLASSES)] and data.num_classes == CLASSES


def test_the_split_is_fixed_by_split_seed_and_takes_a_fraction_too(root, data):
    again = ImageFolderData(root, val_size=8, split_seed=0, **SMALL)
    other = ImageFolderData(root, val_size=8, split_seed=1, **SMALL)
    assert (again.val.files == data.val.files).all()
    assert set(other.val.files) != set(data.val.files)
    assert len(ImageFolderData(root, val_size=0.25, split_seed=0, **SMALL).val) == 6


def test_a_validation_split_that_misses_a_class_is_refused(root):
    with pytest.raises(DataError, match="leaves some of the 4 classes out of the val split"):
        ImageFolderData(root, val_size=2, **SMALL)


def test_the_test_split_is_the_official_val_folder(root, data):
    assert data.test.folder == root / "val"
    assert len(data.test) == CLASSES * PER_VAL_CLASS
    for i in range(len(data.test)):
        assert data.test.path(i).parent.name == data.class_names[data.test.labels[i]]


def test_missing_folders_name_the_folder_and_the_layout(tmp_path, root):
    with pytest.raises(DataError) as err:
        ImageFolderData(tmp_path, val_size=8)
    msg = str(err.value)
    assert f"expected the folder {tmp_path / 'train'}" in msg and "<root>/train/<class>/*.JPEG" in msg
    assert "Nothing is downloaded" in msg
    (tmp_path / "train").symlink_to(root / "train")
    with pytest.raises(DataError, match=f"expected the folder {tmp_path / 'val'}"):
        ImageFolderData(tmp_path, val_size=8)


def test_training_batches_are_random_resized_crops_in_uint8_nchw(data):
    x, y = next(iter(data.loader("train", 4, seed=0)))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert len(data.loader("train", 4, seed=0)) == len(data.train) // 4  # partial last batch dropped


def test_normalised_batches_are_standardised_by_the_imagenet_statistics(data):
    x, _ = next(iter(data.loader("train", 4, seed=0, normalize=True)))
    raw, _ = next(iter(data.loader("train", 4, seed=0)))
    assert x.dtype == torch.float32
    torch.testing.assert_close(x, data.normalize(raw))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert ((x >= -mean / std - 1e-5) & (x <= (1 - mean) / std + 1e-5)).all()
    torch.testing.assert_close(x * std + mean, raw / 255.0)


def test_evaluation_is_resize_then_centre_crop_in_index_order_with_every_image(data):
    x, y = _all(data.loader("test", 3))
    assert x.shape == (len(data.test), 3, 32, 32) and y.tolist() == data.test.labels.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ref = v2.Compose([v2.Resize(36, antialias=True), v2.CenterCrop(32)])
        torch.testing.assert_close(x[5], ref(decode(data.test.path(5))))
    x, y = _all(data.loader("train", 5, train=False))  # the training images, unaugmented
    assert len(x) == len(data.train) and y.tolist() == data.train.labels.tolist()


def test_every_image_decodes_to_rgb_greyscale_included(data):
    grey = next(i for i in range(len(data.train)) if data.train.path(i).name == "train_0_0.JPEG")
    img = decode(data.train.path(grey))
    assert img.shape == (3, 64, 64) and (img[0] == img[1]).all()


def test_the_same_seed_and_epoch_give_the_same_batches_and_another_epoch_another_order(data):
    a, b = _all(data.loader("train", 4, seed=3, epoch=2)), _all(data.loader("train", 4, seed=3, epoch=2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    first, second = (torch.cat(data.batches("train", 4, seed=3, epoch=e)) for e in (2, 3))
    assert not torch.equal(first, second)
    assert not torch.equal(a[0], _all(data.loader("train", 4, seed=3, epoch=3))[0])


def test_a_samples_crop_changes_with_the_epoch(data):
    """Aligned by index (not by position), the same image is cropped afresh each epoch."""

    def by_index(epoch: int) -> torch.Tensor:
        x, _ = _all(data.loader("train", 4, seed=3, epoch=epoch))
        return x[torch.cat(data.batches("train", 4, seed=3, epoch=epoch)).argsort()]

    a, b = by_index(2), by_index(3)
    assert sum(not torch.equal(a[i], b[i]) for i in range(len(a))) > len(a) // 2


def test_a_resumed_epoch_replays_the_remaining_batches(data):
    x, y = _all(data.loader("train", 4, seed=3, epoch=1))
    rx, ry = _all(data.loader("train", 4, seed=3, epoch=1, start=2))
    assert torch.equal(rx, x[8:]) and torch.equal(ry, y[8:])


def test_a_samples_augmentation_does_not_depend_on_the_batch_size(data):
    """The order is one permutation cut into batches and each crop is seeded by (seed, epoch, index)."""
    x4, _ = _all(data.loader("train", 4, seed=5))
    x8, _ = _all(data.loader("train", 8, seed=5))
    assert torch.equal(x4, x8)


def test_two_workers_give_the_same_batches_as_none(data):
    x0, y0 = _all(data.loader("train", 4, seed=7, workers=0))
    x2, y2 = _all(data.loader("train", 4, seed=7, workers=2))
    assert torch.equal(x0, x2) and torch.equal(y0, y2)


def test_the_training_loop_gets_normalised_channels_last_batches(data):
    x, y = next(data.train_batches(0, 4, 3, torch.device("cpu")))
    raw, raw_y = next(iter(data.loader("train", 4, seed=3, epoch=0)))
    torch.testing.assert_close(x, data.normalize(raw))
    assert x.is_contiguous(memory_format=torch.channels_last) and torch.equal(y, raw_y)
    assert sum(len(y) for _, y in data.eval_batches("val", 3, torch.device("cpu"))) == len(data.val)
    assert data.to("cpu") is data and data.size("test") == len(data.test)


def test_loading_leaves_the_global_rng_alone(data):
    state = torch.get_rng_state()
    _all(data.loader("train", 4, seed=0))
    assert torch.equal(state, torch.get_rng_state())


def test_crop_boxes_lie_inside_the_image_and_cover_the_scale_range():
    rng = random.Random(0)
    areas = []
    for _ in range(500):
        top, left, h, w = resized_crop_box(375, 500, rng, (0.08, 1.0))
        assert 0 <= top <= 375 - h and 0 <= left <= 500 - w
        areas.append(h * w / (375 * 500))
    assert min(areas) < 0.12 and max(areas) > 0.8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG)")
def test_gpu_decoding_gives_the_same_crop(data):
    from torchvision.io import decode_jpeg, read_file

    path = data.train.path(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        gpu = decode_jpeg(read_file(str(path)), device="cuda")
    cpu_crop = train_transform(decode(path), 32, random.Random(1), (0.08, 1.0))
    gpu_crop = train_transform(gpu, 32, random.Random(1), (0.08, 1.0)).cpu()
    assert gpu_crop.shape == cpu_crop.shape
    assert (gpu_crop.float() - cpu_crop.float()).abs().mean() < 3  # nvJPEG's IDCT differs by a few levels
