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
from prunestudy.pruning.arms import BOTTLENECK, CURVES, PRUNED, PRUNED_LONG, SCALED, SCRATCH_B, SCRATCH_E, WIDTH
from prunestudy.training import loop as train_mod
from prunestudy.training.data import Augment, apply_augment
from prunestudy.training.loop import fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def test_the_test_split_is_evaluated_once_after_the_final_epoch_and_reported_as_test(digits, monkeypatch):
    calls = []

    def fake_evaluate(model, data, split, rt, batch_size=1000):
        calls.append("test" if split is data.test else "val" if split is data.val else "other")
        return {"val": 0.25, "test": 0.75}[calls[-1]]

    monkeypatch.setattr(train_mod, "evaluate", fake_evaluate)
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
    real = train_mod.train_step

    def spy(model, opt, data, rt, batch, aug, hooks=None):
        seen.setdefault(len(seen_epochs), set()).add(opt.lr)
        return real(model, opt, data, rt, batch, aug, hooks)

    seen_epochs: list[int] = []
    real_eval = train_mod.evaluate

    def count_epochs(*a, **k):
        seen_epochs.append(1)
        return real_eval(*a, **k)

    monkeypatch.setattr(train_mod, "train_step", spy)
    monkeypatch.setattr(train_mod, "evaluate", count_epochs)
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


def _families(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    """Family comparisons as stats.family_table writes them: mean_diff is family_a's error minus family_b's."""
    return pd.DataFrame(
        [
            {"family_a": a, "family_b": b, "mean_diff": d, "ci_low": d - 0.01, "ci_high": d + 0.01, "p_t": p}
            for a, b, d, p in rows
        ]
    )


def test_claims_from_hand_made_tables_in_both_orientations():
    paired = pd.DataFrame(
        [
            {
                "comparison": f"{PRUNED} - {SCRATCH_E}",
                "mean_diff": 0.02,
                "ci_low": 0.01,
                "ci_high": 0.03,
                "p_wilcoxon": 0.001,
            },
            {
                "comparison": f"{PRUNED} - {SCRATCH_B}",
                "mean_diff": -0.03,
                "ci_low": -0.04,
                "ci_high": -0.02,
                "p_wilcoxon": 0.02,
            },
            {
                "comparison": f"{PRUNED_LONG} - {SCRATCH_B}",
                "mean_diff": 0.001,
                "ci_low": -0.002,
                "ci_high": 0.004,
                "p_wilcoxon": 0.5,
            },
        ]
    )
    families = _families(
        [
            (CURVES[PRUNED], WIDTH, 0.03, 0.004),  # as the claim reads: pruned curve worse by 3 pp
            (BOTTLENECK, CURVES[PRUNED], 0.02, 0.03),  # reversed: the bottleneck family is the worse one
            (WIDTH, CURVES[SCRATCH_E], 0.015, 0.01),
            (CURVES[SCRATCH_E], BOTTLENECK, 0.001, 0.6),  # reversed, tiny effect
            (SCALED, WIDTH, -0.02, 0.002),  # reversed: scaled is better by 2 pp
            (BOTTLENECK, SCALED, -0.01, 0.04),  # as read, but against the claim
        ]
    )
    t = claims_table({"e": (paired, families)}, alpha=0.05, margin=0.005).set_index("claim")
    assert "liu-guided" not in t.index  # no guided arms in these tables: the claim does not apply
    assert t.loc["crowley-a-width", "effect_pp"] == pytest.approx(3.0)
    assert t.loc["crowley-a-bottleneck", "effect_pp"] == pytest.approx(-2.0)  # sign flipped: against (a)
    assert t.loc["crowley-a-bottleneck", ["ci_low_pp", "ci_high_pp"]].tolist() == pytest.approx([-3.0, -1.0])
    assert t.loc["crowley-b-bottleneck", "effect_pp"] == pytest.approx(-0.1)
    assert t.loc["crowley-c-width", "effect_pp"] == pytest.approx(2.0)
    assert t.loc["crowley-c-bottleneck", "effect_pp"] == pytest.approx(-1.0)
    assert t.loc["liu-scratch-b", "effect_pp"] == pytest.approx(-3.0)
    # Holm over the nine distinct measurements (liu-scratch-e and crowley-b-tuned are one), by hand:
    # sorted p: .001 .002 .004 .01 .02 .03 .04 .5 .6 times 9..1 -> .009 .016 .028 .06 .1 .12 .12 1.0 1.0
    expected = {
        "liu-scratch-e": 0.009,
        "crowley-b-tuned": 0.009,
        "crowley-c-width": 0.016,
        "crowley-a-width": 0.028,
        "crowley-b-width": 0.06,
        "liu-scratch-b": 0.1,
        "crowley-a-bottleneck": 0.12,
        "crowley-c-bottleneck": 0.12,
        "blog-long-base": 1.0,
        "crowley-b-bottleneck": 1.0,
    }
    assert t["p_holm"].to_dict() == pytest.approx(expected)
    assert t.loc["liu-scratch-e", "p"] == pytest.approx(0.001)  # the raw p stays beside the corrected one
    verdicts = t["verdict"].to_dict()
    assert verdicts["liu-scratch-e"] == verdicts["crowley-b-tuned"] == verdicts["crowley-c-width"] == "supported"
    # against the claim with raw p = .02, but not significant once corrected (p_holm = .1): inconclusive
    assert verdicts["liu-scratch-b"] == "inconclusive" and verdicts["crowley-a-bottleneck"] == "inconclusive"
    # not significant, but the CI (-0.2 pp) stays inside the 0.5 pp margin: a match supports a "matches" claim
    assert verdicts["blog-long-base"] == "supported" and verdicts["crowley-b-bottleneck"] == "inconclusive"


def test_plotted_values_are_the_runs_values():
    from prunestudy.analysis import figures

    runs = pd.DataFrame(
        [
            {"arm": "base", "seed": s, "budget": None, "member": None, "params": 1000, "test_error": e}
            for s, e in ((1, 0.05), (2, 0.07))
        ]
        + [
            {"arm": "width", "seed": s, "budget": None, "member": m, "params": p, "test_error": e}
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
    """Each comparison of the rule is strict: p equal to alpha, a zero effect, or a CI bound exactly at minus
    the margin decides nothing."""
    from prunestudy.analysis.verdicts import verdict

    assert verdict("beats", 0.02, 0.01, 0.05, alpha=0.05, margin=0.005) == "inconclusive"  # p == alpha
    assert verdict("beats", 0.02, 0.01, 0.0499, alpha=0.05, margin=0.005) == "supported"
    assert verdict("beats", 0.0, -0.01, 0.01, alpha=0.05, margin=0.005) == "inconclusive"  # significant, no effect
    assert verdict("beats", -0.001, -0.01, 0.01, alpha=0.05, margin=0.005) == "contradicted"
    assert verdict("matches_or_beats", 0.0, -0.005, 0.5, alpha=0.05, margin=0.005) == "inconclusive"
    assert verdict("matches_or_beats", 0.0, -0.0049, 0.5, alpha=0.05, margin=0.005) == "supported"
    assert verdict("beats", float("nan"), float("nan"), 0.01, alpha=0.05, margin=0.005) == "inconclusive"
