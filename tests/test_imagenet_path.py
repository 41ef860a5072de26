"""ImageNet's real data path through the training loop: JPEGs in class folders, ``data.load("imagenet")``,
``fit`` on a small ImageNet ResNet-18, and a crash mid-run resumed to the uninterrupted result."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from prunestudy.arch import build_spec
from prunestudy.io.catalog import DATASETS, missing_files
from prunestudy.methods.base import TrainHooks
from prunestudy.training.data import DataError, Shard, load
from prunestudy.training.imagefolder import ImageFolderData
from prunestudy.training.loop import fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

CLASSES, PER_CLASS, PER_VAL_CLASS, CROP = 3, 6, 2, 24
RECIPE = Recipe(epochs=2, batch_size=4, lr=0.05, milestones=(1,))


class Crash(RuntimeError):
    """A job dying mid-epoch, as a test can cause one in-process."""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """<root>/train/<class>/*.JPEG and <root>/val/<class>/*.JPEG, 32x32 noise with a per-class tint."""
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", PER_CLASS), ("val", PER_VAL_CLASS)):
        for c in range(CLASSES):
            (root / split / f"n{c:08d}").mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 128, (32, 32, 3), dtype=np.uint8)
                pixels[..., c] += 127
                Image.fromarray(pixels).save(root / split / f"n{c:08d}" / f"{i}.JPEG", quality=90)
    return root


@pytest.fixture(scope="module")
def data(root):
    return load("imagenet", str(root), val=CLASSES, split_seed=0, options={"crop": CROP, "resize": 28})


def _spec():
    options = {"family": "imagenet_resnet", "depth": 18, "width": 0.125}
    return build_spec(options, num_classes=CLASSES, in_channels=3, image_size=CROP)


def _crash_at(step: int):
    def hooks(model, opt) -> TrainHooks:
        steps = []

        def count() -> None:
            steps.append(1)
            if len(steps) == step:
                raise Crash(f"step {step}")

        return TrainHooks(after_step=[count])

    return hooks


def _fit(data, path, hooks=None):
    return fit(_spec(), data, RECIPE, seed=7, rt=Runtime.pick("cpu"), resume_path=path, resume_key="k", hooks=hooks)


def test_load_gives_the_imagefolder_splits_and_the_catalog_knows_imagenet(root, data, tmp_path):
    assert isinstance(data, ImageFolderData) and data.image_size == CROP and data.num_classes == CLASSES
    assert (data.size("train"), data.size("val"), data.size("test")) == (15, 3, 6)
    assert DATASETS["imagenet"].num_classes == 1000 and DATASETS["imagenet"].test_size == 50000
    config = {"name": "imagenet", "root": str(tmp_path), "download": True}
    assert "expected the folder" in missing_files(config) and missing_files({**config, "root": str(root)}) is None
    with pytest.raises(DataError, match="apply to imagenet only"):
        load("digits", options={"crop": 8})


def test_a_rank_decodes_its_rows_of_each_global_batch_and_its_part_of_each_split(data):
    whole = list(data.train_batches(1, 4, 3, "cpu"))
    halves = [list(data.train_batches(1, 4, 3, "cpu", Shard(r, 2))) for r in range(2)]
    for (x, y), (x0, y0), (x1, y1) in zip(whole, *halves, strict=True):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
    parts = [torch.cat([y for _, y in data.eval_batches("test", 2, "cpu", Shard(r, 4))]) for r in range(4)]
    assert torch.cat(parts).tolist() == data.test.labels.tolist()


def test_fit_trains_through_the_imagefolder_path_and_resumes_bit_identically(data, tmp_path):
    whole = _fit(data, tmp_path / "whole.pt")
    assert len(whole.history) == 2 and 0 <= whole.test_error <= 1 and 0 <= whole.val_error <= 1
    steps = data.size("train") // RECIPE.batch_size
    with pytest.raises(Crash):
        _fit(data, tmp_path / "crashed.pt", hooks=_crash_at(steps + 2))  # in the second epoch
    resumed = _fit(data, tmp_path / "crashed.pt")
    key = [(h["train_loss"], h["val_error"]) for h in whole.history]
    assert [(h["train_loss"], h["val_error"]) for h in resumed.history] == key
    assert resumed.test_error == whole.test_error
    for (name, w), v in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(w, v), name


def test_a_data_driven_method_reads_its_calibration_images_from_the_folders(data):
    """ThiNet on an ImageNet ResNet: seeded calibration draws, decoded as evaluated, read by the pruning."""
    from prunestudy.methods.thinet import ThiNet, ThiNetParams
    from prunestudy.pruning.oneshot import calibration_batches, prune_once

    a, b = (calibration_batches(data, 5, seed=3, batch_size=2) for _ in range(2))
    assert [tuple(x.shape) for x in a] == [(2, 3, CROP, CROP), (2, 3, CROP, CROP), (1, 3, CROP, CROP)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)) and abs(float(torch.cat(a).mean())) < 3
    assert not torch.equal(torch.cat(a), torch.cat(calibration_batches(data, 5, seed=4, batch_size=2)))
    spec = _spec()
    torch.manual_seed(0)
    params = ThiNetParams(settings={"half": {"keep": 0.5}}, locations=2)
    pruned = prune_once(spec.build().state_dict(), spec, ThiNet, "half", params, a)
    assert pruned.spec.widths_vector == tuple(max(1, int(w * 0.5)) for w in spec.widths_vector)


@pytest.mark.slow
def test_the_workflow_runs_a_tiny_imagefolder_through_pruning_both_scratch_arms_and_collect(root, tmp_path):
    """The whole ImageNet path through Snakemake's rules: a large network on the JPEG folders, L1-norm
    pruning of its ResNet, fine-tuning, Scratch-E and Scratch-B, collect, the study's tables. Three classes
    are not ILSVRC2012's thousand, so the config check leaves the split check to the loader."""
    import pandas as pd

    from tests.workflow_helpers import snakemake, write_config

    experiment = {
        "name": "resnet18-l1",
        "model": {"family": "imagenet_resnet", "depth": 18, "width": 0.125},
        "method": "l1",
        "prune": {"settings": {"A": {"widths": [4, 4, 8, 8, 16, 16, 32, 32]}}},
        "targets": ["A"],
        "finetune": {"epochs": 1, "batch_size": 8, "lr": 0.002, "schedule": "constant"},
    }
    data = {"name": "imagenet", "root": str(root), "val_size": CLASSES}
    data["imagefolder"] = {"crop": CROP, "resize": 28, "workers": 0, "eval_batch_size": 16}
    changes = {"study": "tinyin", "seeds": [1], "device": "cpu", "data": data, "experiments": [experiment]}
    changes |= {"train": {"epochs": 2, "batch_size": 8, "lr": 0.05, "milestones": [1]}, "latency.repeats": 2}
    snakemake(tmp_path, write_config(tmp_path / "tiny.yaml", **changes, **{"analysis.calibration_studies": 200}))
    runs = pd.read_csv(tmp_path / "results/tinyin/resnet18-l1/runs.csv").set_index("arm")
    assert set(runs.index) == {"base", "pruned", "scratch-E", "scratch-B"}
    assert (runs["test_error"] * CLASSES * PER_VAL_CLASS).round(9).mod(1).eq(0).all()  # counted on the val folder
    # ILSVRC2012's head, its FLOPs counted at the crop the network sees (not the catalog's 224)
    base = build_spec(experiment["model"], num_classes=1000, in_channels=3, image_size=CROP)
    assert (runs.loc["base", "params"], runs.loc["base", "flops"]) == (base.param_count(), base.flops())
    assert runs.loc["base", "flops"] > runs.loc["pruned", "flops"] > 0
    assert (runs.loc[["pruned", "scratch-E", "scratch-B"], "spec_id"].nunique()) == 1
    assert (tmp_path / "results/tinyin/tables/claims.csv").is_file()
