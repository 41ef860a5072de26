"""The README's promises, checked by value: each test here fails when the number it guards is wrong."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from prunestudy.analysis.claims import claims_table
from prunestudy.arch import build_spec, wrn
from prunestudy.io.artifacts import atomic_write_text
from prunestudy.pruning.arms import BOTTLENECK, PRUNED, SCALED, SCRATCH_E, WIDTH
from prunestudy.training import loop as train_mod
from prunestudy.training.data import Augment, apply_augment
from prunestudy.training.loop import fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def test_the_test_split_is_evaluated_once_after_the_final_epoch_and_reported_as_test(digits, monkeypatch):
    calls = []

    def fake_split_error(forward, model, source, split, rt, part):
        calls.append(split)
        return {"val": 0.25, "test": 0.75}[split]

    monkeypatch.setattr(train_mod, "_split_error", fake_split_error)
    result = fit(
        wrn(10, 1, in_channels=1, image_size=8),
        digits,
        Recipe(epochs=3, batch_size=64, lr=0.05),
        Augment(),
        seed=0,
        rt=Runtime.pick("cpu"),
    )
    assert calls == ["val", "val", "val", "test"]
    assert (result.val_error, result.test_error) == (0.25, 0.75)
    assert [h["val_error"] for h in result.history] == [0.25] * 3


def test_schedules_by_value():
    step = Recipe(epochs=10, batch_size=8, lr=1.0, milestones=(3, 6), gamma=0.1)
    assert [step.lr_at(e) for e in range(8)] == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    cosine = Recipe(epochs=4, batch_size=8, lr=2.0, schedule="cosine")
    assert [cosine.lr_at(e) for e in range(4)] == pytest.approx([2.0, 1 + math.sqrt(0.5), 1.0, 1 - math.sqrt(0.5)])
    constant = Recipe(epochs=5, batch_size=8, lr=0.3, schedule="constant", milestones=(2,))  # ignores milestones
    assert {constant.lr_at(e) for e in range(5)} == {0.3}
    stretched = step.stretched(20)
    assert stretched.milestones == (6, 12) and stretched.lr_at(5) == 1 and stretched.lr_at(6) == pytest.approx(0.1)


def test_a_recipe_round_trips_through_the_config_form():
    """Rules pass recipes as JSON: milestones arrive as a list (of ints or numeric text) and become a tuple."""
    d = {"epochs": 9, "batch_size": 16, "lr": 0.2, "schedule": "multistep", "milestones": [3, "6"], "gamma": 0.5}
    r = Recipe.from_dict(d)
    assert r.milestones == (3, 6) and r.lr_at(6) == pytest.approx(0.05) and d["milestones"] == [3, "6"]
    assert r.to_dict() == {**d, "milestones": [3, 6], "momentum": 0.9, "nesterov": False, "weight_decay": 5e-4}
    assert (
        Recipe.from_dict(r.to_dict()) == r
        and Recipe.from_dict({"epochs": 1, "batch_size": 2, "lr": 1}).milestones == ()
    )


def test_fit_trains_each_epoch_at_that_epochs_rate(digits, monkeypatch):
    seen: dict[int, set[float]] = {}
    real = train_mod.step

    def spy(model, opt, rt, x, y, hooks=None):
        seen.setdefault(len(seen_epochs), set()).add(opt.lr)
        return real(model, opt, rt, x, y, hooks)

    seen_epochs: list[int] = []
    real_eval = train_mod._split_error

    def count_epochs(*a, **k):
        seen_epochs.append(1)
        return real_eval(*a, **k)

    monkeypatch.setattr(train_mod, "step", spy)
    monkeypatch.setattr(train_mod, "_split_error", count_epochs)
    recipe = Recipe(epochs=4, batch_size=256, lr=0.1, milestones=(1, 3), gamma=0.5)
    fit(wrn(10, 1, in_channels=1, image_size=8), digits, recipe, Augment(), seed=0, rt=Runtime.pick("cpu"))
    assert [sorted(seen[e]) for e in range(4)] == [[0.1], [0.05], [0.05], [0.025]]


def test_cifar_pixels_are_the_pickles_bytes_channel_first_row_major(tmp_path, monkeypatch):
    from prunestudy.training import data as data_mod
    from tests.test_data import _write_cifar

    _write_cifar(tmp_path, monkeypatch)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as f:
        raw = pickle.load(f)
    ds = data_mod.load("cifar10", root=str(tmp_path), val=20)
    row = raw["data"][3]  # 1024 red, then green, then blue; each 32 rows of 32 columns
    expected = torch.from_numpy(row.reshape(3, 32, 32))
    assert torch.equal(ds.test.x[3], expected)
    assert int(ds.test.x[3, 1, 0, 5]) == int(row[1024 + 5]) and int(ds.test.x[3, 2, 5, 0]) == int(row[2048 + 5 * 32])
    assert ds.test.y.tolist() == raw["labels"]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_a_crop_moves_every_pixel_by_its_drawn_offset(mode):
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.int64).view(2, 1, 5, 5)
    shift = torch.tensor([[2, -1], [-1, 2]])  # rows: dy per image; dx per image
    out = apply_augment(x, Augment(pad=2, pad_mode=mode), shift, None)
    padded = torch.nn.functional.pad(x.float(), (2, 2, 2, 2), mode=mode).long()
    for n in range(2):
        dy, dx = int(shift[0, n]), int(shift[1, n])
        assert torch.equal(out[n, 0], padded[n, 0, 2 + dy : 7 + dy, 2 + dx : 7 + dx]), (mode, n)
    assert torch.equal(out[0, 0, 0, 1:], x[0, 0, 2, :4])  # moved by (2, -1): the pixel two rows down, one left


def test_an_interrupted_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "table.csv"
    atomic_write_text(path, "old\n")
    from prunestudy.io.artifacts import atomic_file

    with pytest.raises(KeyboardInterrupt), atomic_file(path) as f:
        f.write(b"half of the new")
        raise KeyboardInterrupt
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


def _curve_runs(errors: dict[str, tuple[float, float]], seeds=(1, 2, 3, 4, 5, 6)) -> pd.DataFrame:
    """Runs whose curves (by arm) run over the same params at the given errors, one seed apart by 0.1 pp."""
    rows = []
    for arm, (e_small, e_large) in errors.items():
        for s in seeds:
            for i, (params, e) in enumerate(((100, e_small), (1000, e_large))):
                member = None if arm in (PRUNED, SCRATCH_E) else float(i)
                target = float(i) if member is None else None
                rows.append(
                    {"arm": arm, "seed": s, "target": target, "member": member, "params": params}
                    | {"test_error": e + 0.001 * (s % 3) * (arm == WIDTH)}
                )
    return pd.DataFrame(rows)


def test_claims_read_each_comparison_in_the_claims_own_orientation():
    """Curves in every orientation: the effect is always the error of what the claim calls worse minus what it
    calls better, whichever family sorts first; the run-level tables are made by hand."""
    from prunestudy.analysis.claims import comparisons
    from prunestudy.analysis.stats import units_table

    runs = _curve_runs(
        {
            PRUNED: (0.13, 0.11),  # the tuned curve: 3 pp worse than width
            SCRATCH_E: (0.12, 0.10),
            WIDTH: (0.10, 0.08),
            BOTTLENECK: (0.14, 0.12),
            SCALED: (0.08, 0.06),
        }
    )
    units = units_table(runs, comparisons(), grid_points=3)
    trained = {"base", PRUNED, SCRATCH_E, WIDTH, BOTTLENECK, SCALED}  # no Scratch-B in these runs
    t = claims_table({"e": (trained, units)}, alpha=0.05, margin=0.005, resolution=1e-4)
    t = t.set_index("claim")
    assert t.loc["crowley-a-width", "effect_pp"] == pytest.approx(3.0 - 0.1, abs=0.05)  # tuned minus width
    assert t.loc["crowley-a-bottleneck", "effect_pp"] == pytest.approx(-1.0)  # against (a): the family is worse
    assert t.loc["crowley-b-width", "effect_pp"] == pytest.approx(-2.0 + 0.1, abs=0.05)  # width minus scratch-E
    assert t.loc["crowley-b-bottleneck", "effect_pp"] == pytest.approx(2.0)
    assert t.loc["crowley-c-width", "effect_pp"] == pytest.approx(2.0 + 0.1, abs=0.05)  # width minus scaled
    assert t.loc["crowley-c-bottleneck", "effect_pp"] == pytest.approx(6.0)
    assert t.loc["crowley-b-tuned", "effect_pp"] == pytest.approx(1.0)
    verdicts = t["verdict"].to_dict()
    assert verdicts["crowley-a-bottleneck"] == verdicts["crowley-b-width"] == "contradicted"
    assert verdicts["crowley-b-bottleneck"] == verdicts["crowley-c-bottleneck"] == "supported"
    assert verdicts["liu-scratch-e"] == "supported"  # Scratch-E is 1 pp better: more than matches


def test_plotted_values_are_the_runs_values():
    from prunestudy.analysis import figures

    runs = pd.DataFrame(
        [
            {"arm": "base", "seed": s, "target": None, "member": None, "params": 1000, "test_error": e}
            for s, e in ((1, 0.05), (2, 0.07))
        ]
        + [
            {"arm": "width", "seed": s, "target": None, "member": m, "params": p, "test_error": e}
            for (m, p), errs in (((0.5, 300), (0.10, 0.12)), ((1.0, 1000), (0.06, 0.08)))
            for s, e in zip((1, 2), errs, strict=True)
        ]
    )
    runs["flops"], runs["latency_ms"] = runs["params"] * 10, 1.0
    ax = figures.error_vs(runs, "params").axes[0]
    (bars,) = [c for c in ax.containers if c.get_label() == "width"]  # the mean +- std of each member
    x, y = bars.lines[0].get_data()
    assert list(y) == pytest.approx([11.0, 7.0])  # mean test error (%) per member, in params order
    caps = sorted(float(v) for seg in bars.lines[2][0].get_segments() for v in np.asarray(seg)[:, 1])
    assert caps == pytest.approx([7 - math.sqrt(2), 7 + math.sqrt(2), 11 - math.sqrt(2), 11 + math.sqrt(2)])
    assert np.asarray(x) / np.asarray(x).max() == pytest.approx([0.3, 1.0])
    stars = [c for c in ax.collections if c.get_label() == "base"]
    assert sorted(stars[0].get_offsets()[:, 1].tolist()) == pytest.approx([5.0, 7.0])


@pytest.mark.parametrize(
    "options",
    [
        {"family": "wrn", "depth": 16, "width": 2},
        {"family": "resnet", "depth": 8},
        {"family": "preresnet", "depth": 11, "bottleneck": True},
    ],
)
def test_no_strided_1x1_convolution_anywhere(options):
    """oneDNN#6035: a strided 1x1 conv's weight gradient is wrong on AVX2 CPUs for < 8 input channels, so a
    projection subsamples first and convolves at stride 1. Checked on the graph, so it fails on every CPU."""
    spec = build_spec(options, num_classes=10, in_channels=3, image_size=16)
    seen = []

    class Convs(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten.convolution.default:
                weight, stride = args[1], args[3]
                seen.append((tuple(weight.shape[2:]), tuple(stride)))
            return func(*args, **(kwargs or {}))

    with Convs():
        spec.build()(torch.randn(2, 3, 16, 16))
    assert any(s != (1, 1) for _, s in seen)  # the network does downsample
    assert not [(k, s) for k, s in seen if k == (1, 1) and s != (1, 1)], seen


def test_verdicts_at_the_boundaries_of_the_rule():
    """Each comparison of the rule is strict: a corrected p equal to alpha, or an estimate on its threshold,
    decides nothing; an undefined test decides nothing."""
    from scipy import stats

    from prunestudy.analysis.verdicts import Evidence, decide

    def one(estimate, theta, se=0.001, df=9.0):
        ev = Evidence(np.array([estimate]), np.array([se]), np.array([df]), np.array([df + 1]), np.array([se]))
        return decide(ev, np.array([theta]), 0.05)

    at_alpha = 0.005 + stats.t.isf(0.025, 9) * 0.001  # raw p .025, Holm over two hypotheses: exactly .05
    assert one(at_alpha, 0.005).p_holm[0] == pytest.approx(0.05)
    assert one(at_alpha, 0.005).verdict[0] == "inconclusive"
    assert one(at_alpha + 1e-6, 0.005).verdict[0] == "supported"
    assert one(0.005, 0.005).verdict[0] == "inconclusive"  # on the threshold, however precise
    assert one(float("nan"), 0.005).verdict[0] == "inconclusive"
