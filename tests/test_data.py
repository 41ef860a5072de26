import hashlib
import pickle

import numpy as np
import pytest
import torch

from prunestudy.training import data as data_mod
from prunestudy.training.data import Augment, DataError, epoch_batches, stratified_split
from tests.conftest import augment_once


def test_digits_splits_are_disjoint_stratified_and_deterministic(digits):
    again = data_mod.load("digits", val=0.15, test=0.25)
    assert torch.equal(digits.train.x, again.train.x) and torch.equal(digits.test.y, again.test.y)
    sizes = len(digits.train) + len(digits.val) + len(digits.test)
    assert sizes == 1797
    rows = {
        (*tuple(x.flatten().tolist()), int(y))
        for s in (digits.train, digits.val, digits.test)
        for x, y in zip(s.x, s.y, strict=True)
    }
    assert len(rows) > 1700  # near-duplicate images exist in digits, but the splits do not share indices
    for split in (digits.val, digits.test):
        counts = torch.bincount(split.y, minlength=10).float()
        assert counts.min() / counts.max() > 0.85
    assert digits.train.x.dtype == torch.uint8


def test_digits_are_scikit_learns_load_digits():
    from sklearn.datasets import load_digits

    x, y = data_mod._digits_arrays()
    d = load_digits()
    assert np.array_equal(x[:, 0], d.images) and np.array_equal(y, d.target)


def test_stratified_split_counts():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    keep, held = stratified_split(y, 0.1, seed=3)
    assert len(held) == 10 and np.bincount(y[held]).tolist() == [1, 2, 3, 4]
    assert not set(keep) & set(held)


def test_augment_crops_shift_content_and_flips_mirror():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    gen = torch.Generator().manual_seed(0)
    out = augment_once(x, Augment(pad=1, pad_mode="constant"), gen)
    assert out.shape == x.shape
    for i in range(2):  # every crop is a window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (1, 1, 1, 1))
        windows = [padded[:, r : r + 4, c : c + 4] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped = augment_once(x, Augment(flip=True), torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


def test_epoch_batches_drop_only_the_partial_batch():
    batches = epoch_batches(10, 3, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(torch.cat(batches).tolist())) == 9


def _write_cifar(root, monkeypatch, n_train=20, n_test=10):
    """Tiny CIFAR-10 in the real on-disk format: pickled batches of uint8 rows, plus batches.meta."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(name, n):
        d = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": [i % 10 for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(d))

    for name, _ in CIFAR10.train_list:
        batch(name, n_train)
    batch("test_batch", n_test)
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    # The files are real CIFAR pickles, so torchvision's integrity check runs for real, against their checksums.
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(n)] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setitem(CIFAR10.meta, "md5", md5("batches.meta"))


def test_cifar10_loads_from_the_real_on_disk_format(tmp_path, monkeypatch):
    _write_cifar(tmp_path, monkeypatch)
    ds = data_mod.load("cifar10", root=str(tmp_path), val=20)
    assert ds.train.x.shape == (80, 3, 32, 32) and ds.train.x.dtype == torch.uint8
    assert len(ds.val) == 20 and len(ds.test) == 10
    assert torch.bincount(ds.val.y, minlength=10).tolist() == [2] * 10
    x = ds.normalize(ds.train.x[:4])
    assert x.dtype == torch.float32 and x.abs().max() < 3


def test_missing_cifar_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError, match=r"cifar-10-batches-py.*data.download"):
        data_mod.load("cifar10", root=str(tmp_path / "nowhere"))


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset"):
        data_mod.load("mnist")


@pytest.mark.parametrize("mode", ["reflect", "constant", "replicate"])
def test_gather_crop_equals_a_window_of_the_padded_image(mode):
    x = torch.randint(0, 256, (16, 3, 6, 6), dtype=torch.uint8)
    out = augment_once(x, Augment(pad=2, pad_mode=mode, flip=True), torch.Generator().manual_seed(3))
    assert out.dtype == torch.uint8
    flips = 0
    for i in range(len(x)):
        padded = torch.nn.functional.pad(x[i : i + 1].float(), (2, 2, 2, 2), mode=mode)[0].to(torch.uint8)
        windows = [padded[:, r : r + 6, c : c + 6] for r in range(5) for c in range(5)]
        plain = any(torch.equal(out[i], win) for win in windows)
        mirrored = any(torch.equal(out[i], win.flip(2)) for win in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 0 < flips < len(x)


@pytest.mark.parametrize(("pad", "flip"), [(1, False), (0, True), (2, True)])
def test_each_augmentation_is_drawn_on_its_own(pad, flip):
    """Padding alone still crops and flipping alone still flips (the default digits run pads only)."""
    from prunestudy.training.data import draw_batches

    (batch,) = draw_batches([torch.arange(256)], Augment(pad=pad, flip=flip), torch.Generator().manual_seed(0))
    assert batch.shift.shape == (2, 256) and set(batch.shift.unique().tolist()) == set(range(-pad, pad + 1))
    if flip:
        assert 0 < int(batch.flip.sum()) < 256
    else:
        assert batch.flip is None
    (plain,) = draw_batches([torch.arange(8)], Augment(pad=0, flip=False), torch.Generator().manual_seed(0))
    assert plain.shift is None and plain.flip is None
