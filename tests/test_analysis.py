"""Analysis per experiment: guided architectures, consistency across runs, paper tables."""

import numpy as np
import pandas as pd
import pytest

from prunestudy.analysis.consistency import consistency_table, mean_correlation
from prunestudy.analysis.tables import claims_latex, errors_table, write_table
from prunestudy.io.config import base_spec
from prunestudy.pruning.arms import GUIDED, UNIFORM, plan
from prunestudy.pruning.budgets import guided_layer_spec, guided_spec
from prunestudy.training.recipe import Recipe

VGG = {"family": "vgg", "cfg": [8, 8, "M", 16, 16]}


def _base():
    return base_spec(VGG, {"name": "digits"})


def test_guided_widths_are_the_mean_kept_ratio_of_each_stage_times_the_base_widths():
    base = _base()  # two stages of two convs: 8, 8 | 16, 16
    assert base.widths_vector == (8, 8, 16, 16) and base.stages() == ((0, 1), (2, 3))
    runs = [base.with_widths([4, 8, 2, 16]), base.with_widths([6, 7, 5, 15]), base.with_widths([5, 8, 2, 1])]
    # per layer (guided_layer_spec): ratios 15/24, 23/24, 9/48, 32/48 -> 5 (4.999...), 7.67 -> 8, 3, 10.67 -> 11
    assert guided_layer_spec(base, runs).widths_vector == (5, 8, 3, 11)
    # per stage (Liu et al.): stage 1 kept 12/16, 13/16, 13/16 -> 19/24 of 8 = 6.33 -> 6; stage 2 kept 18/32,
    # 20/32, 3/32 -> 41/96 of 16 = 6.83 -> 7, for every layer of the stage
    assert guided_spec(base, runs).widths_vector == (6, 6, 7, 7)
    removed = base.with_widths([1, 1, 1, 1])
    assert guided_spec(base, [removed, removed]).widths_vector == (1, 1, 1, 1)  # never rounded away to 0
    with pytest.raises(ValueError, match="groups"):
        guided_spec(base, [base_spec({"family": "vgg", "cfg": [8, "M", 16]}, {"name": "digits"})])


def test_a_block_every_run_removed_stays_removed_in_the_guided_network():
    base = base_spec({"family": "resnet", "depth": 14, "width": 0.5}, {"name": "digits"})
    assert base.widths_vector == (8, 8, 16, 16, 32, 32)
    runs = [base.with_widths([8, 0, 16, 4, 32, 0]), base.with_widths([8, 0, 16, 0, 32, 1])]
    # per stage: 1/2 of 8 (the block every run emptied stays empty), 9/16 of 16 = 9, 65/128 of 32 = 16.25
    assert guided_spec(base, runs).widths_vector == (4, 0, 9, 9, 16, 16)
    assert guided_layer_spec(base, runs).widths_vector == (8, 0, 16, 2, 32, 1)  # half a channel: kept at one


def test_uniform_is_the_large_network_narrowed_by_one_factor_to_the_guided_params():
    base, recipe = _base(), Recipe(epochs=3, batch_size=8, lr=0.1)
    runs = [base.with_widths([4, 8, 2, 16]), base.with_widths([6, 6, 4, 12])]
    guided = plan(GUIDED, base, recipe, guide=runs)
    uniform = plan(UNIFORM, base, recipe, guide=runs)
    assert guided.spec.widths_vector == (6, 6, 8, 8) and guided.recipe == recipe  # 3/4 of 8; 17/32 of 16 = 8.5, to 8
    assert uniform.extra["target_params"] == guided.spec.param_count()
    assert abs(uniform.spec.param_count() - guided.spec.param_count()) <= 0.05 * guided.spec.param_count()
    ratios = np.array(uniform.spec.widths_vector) / np.array(base.widths_vector)
    assert np.ptp(ratios) <= 1 / 8 + 1e-9  # one common factor, up to rounding to whole channels
    with pytest.raises(ValueError, match="every pruning seed"):
        plan(GUIDED, base, recipe)


def test_consistency_table_by_hand():
    kept = pd.DataFrame(
        {
            "seed": [1, 2, 3, 1, 2, 3],
            "target": [0.4] * 3 + [0.6] * 3,
            "kept": [[4, 8, 2], [6, 8, 5], [4, 8, 2], [1, 2, 3], [3, 2, 1], [1, 2, 3]],
            "unit": "channels",
        }
    )
    t = consistency_table(kept).set_index(["target", "group"])
    # group 0 at 0.4 kept 4, 6, 4: mean 14/3, sample std sqrt(4/3)
    assert t.loc[(0.4, 0), "mean"] == pytest.approx(14 / 3) and t.loc[(0.4, 0), "std"] == pytest.approx(np.sqrt(4 / 3))
    assert t.loc[(0.4, 0), "cv"] == pytest.approx(np.sqrt(4 / 3) * 3 / 14) and t.loc[(0.4, 1), "cv"] == 0
    # 0.4: [6, 8, 5] = 8 + (v - 8) / 2 for v = [4, 8, 2]: every pair is perfectly correlated
    assert t.loc[(0.4, 2), "mean_between_run_corr"] == pytest.approx(1.0)
    # 0.6: pairs (1,2): -1, (1,3): 1, (2,3): -1 -> mean -1/3
    assert t.loc[(0.6, 0), "mean_between_run_corr"] == pytest.approx(-1 / 3)
    assert t["n_seeds"].eq(3).all() and len(t) == 6
    assert np.isnan(mean_correlation([[1, 2, 3]])) and np.isnan(mean_correlation([[1, 2, 3], [2, 2, 2]]))


def _runs():
    rows = [{"arm": "base", "target": None, "seed": s, "params": 100, "test_error": e} for s, e in ((1, 0.1), (2, 0.1))]
    for arm, errs in (("pruned", (0.2, 0.22)), ("scratch-E", (0.18, 0.19)), ("scratch-B", (0.15, 0.17))):
        rows += [{"arm": arm, "target": 0.5, "seed": 1 + i, "params": 50, "test_error": e} for i, e in enumerate(errs)]
    return pd.DataFrame(rows)


def test_errors_table_gives_mean_and_std_in_percent_with_the_number_of_seeds(tmp_path):
    table, caption = errors_table(_runs())
    assert list(table.columns) == ["target", "params", "unpruned", "pruned", "scratch-E", "scratch-B"]
    row = table.iloc[0]
    assert row["unpruned"] == "10.00 ± 0.00"
    assert row["pruned"] == "21.00 ± 1.41" and row["scratch-B"] == "16.00 ± 1.41" and row["params"] == 50
    assert "over 2 seeds" in caption
    write_table(table, tmp_path / "errors", caption=caption)
    tex = (tmp_path / "errors.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "21.00 $\\pm$ 1.41" in tex and "\\caption{Test error (\\%)" in tex and "±" not in tex


def test_the_claims_latex_table_keeps_the_verdict_and_formats_the_effect():
    claims = pd.DataFrame(
        {
            "experiment": ["e"],
            "claim": ["liu-scratch-b"],
            "threshold_pp": [-0.5],
            "effect_pp": [1.234],
            "ci_low_pp": [-0.5],
            "ci_high_pp": [2.0],
            "n_seeds": [3],
            "p_holm": [0.0123],
            "verdict": ["inconclusive"],
        }
    )
    t = claims_latex(claims)
    assert t.iloc[0].tolist() == ["e", "liu-scratch-b", "-0.50", "+1.23 [-0.50, +2.00]", 3, "0.0123", "inconclusive"]
    assert t.columns[-1] == "Verdict"


def test_a_guided_run_checks_every_pruned_spec_against_the_record_written_beside_it(tmp_path):
    from prunestudy.io.artifacts import ArtifactError, file_digest, write_record
    from prunestudy.jobs.train import check_sources as _check_sources

    specs, records, expected = [], [], []
    for seed in (1, 2):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "spec.json").write_text(_base().with_widths([seed, 8, 16, 16]).to_json())
        ident = {"experiment": "e", "arm": "pruned", "seed": seed, "slot": "0.4"}
        write_record(
            folder / "metrics.json", {"identity": ident, "outputs": {"spec.json": file_digest(folder / "spec.json")}}
        )
        specs.append(str(folder / "spec.json"))
        records.append(str(folder / "metrics.json"))
        expected.append(ident)
    assert set(_check_sources(specs, records, expected)) == {"source1", "source2"}
    with pytest.raises(ValueError, match="one --source-record and one --source-expect each"):
        _check_sources(specs, records[:1], expected)
    with pytest.raises(ArtifactError, match="seed"):  # the specs of two seeds given the other way round
        _check_sources(specs[::-1], records[::-1], expected)


def test_what_a_pruned_run_kept_comes_from_its_spec_or_its_mask(tmp_path):
    import torch

    from prunestudy.analysis.consistency import CHANNELS, WEIGHT_FRACTION, kept_frame, kept_vector
    from prunestudy.io.artifacts import write_record
    from prunestudy.pruning import masks

    spec = _base().with_widths([4, 8, 2, 16])
    (tmp_path / "a").mkdir()
    write_record(tmp_path / "a/metrics.json", {"spec": spec.to_dict(), "extra": {}})
    assert kept_vector(tmp_path / "a/metrics.json") == ([4.0, 8.0, 2.0, 16.0], CHANNELS)
    (tmp_path / "b").mkdir()
    mask = {"x.weight": torch.tensor([True, False, False, False]), "y.weight": torch.tensor([True, True])}
    masks.save(tmp_path / "b/mask.pt", spec, mask)
    write_record(tmp_path / "b/metrics.json", {"spec": spec.to_dict(), "extra": {"masked": True}})
    assert kept_vector(tmp_path / "b/metrics.json") == ([0.25, 1.0], WEIGHT_FRACTION)
    runs = pd.DataFrame(
        {"seed": [1, 2], "target": [0.5, 0.5], "path": [str(tmp_path / p / "metrics.json") for p in "ab"]}
    )
    frame = kept_frame(runs)
    assert frame["seed"].tolist() == [1, 2] and frame["target"].tolist() == [0.5, 0.5]
    assert frame["kept"].tolist() == [[4.0, 8.0, 2.0, 16.0], [0.25, 1.0]]
    assert frame["unit"].tolist() == [CHANNELS, WEIGHT_FRACTION]


def test_one_seed_has_no_spread_and_an_empty_group_no_cv():
    kept = pd.DataFrame({"seed": [1], "target": [0.4], "kept": [[0, 3]], "unit": "channels"})
    t = consistency_table(kept)
    assert t["n_seeds"].tolist() == [1, 1] and t["std"].isna().all() and t["cv"].isna().all()
    assert t["mean"].tolist() == [0, 3] and t["group"].tolist() == [0, 1] and t["unit"].eq("channels").all()
    assert t["mean_between_run_corr"].isna().all()
    two = pd.DataFrame({"seed": [1, 2], "target": [0.4] * 2, "kept": [[0, 3], [0, 5]], "unit": "channels"})
    t = consistency_table(two)
    assert np.isnan(t.loc[0, "cv"]) and t.loc[1, "cv"] == pytest.approx(np.std([3, 5], ddof=1) / 4)
    assert list(t.columns) == ["target", "group", "unit", "n_seeds", "mean", "std", "cv", "mean_between_run_corr"]


def test_correlation_needs_two_runs_that_vary_and_reads_any_variation():
    assert mean_correlation([[1, 2, 1], [1, 2, 2]]) == pytest.approx(0.5)  # two runs, each spanning one channel
    assert np.isnan(mean_correlation([[1, 2, 3]]))  # one run has no pair


def test_consistency_rows_come_in_target_order_without_numpy_warnings():
    import warnings

    kept = pd.DataFrame(
        {
            "seed": [1, 2, 1],
            "target": [0.6, 0.6, 0.4],
            "kept": [[0.0, 0.5], [0.0, 0.7], [0.0, 0.25]],
            "unit": "fraction of weights",
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one seed and a group every run emptied are nan by rule, not by 0/0
        t = consistency_table(kept)
    assert t["target"].tolist() == [0.4, 0.4, 0.6, 0.6]
    assert t.loc[3, "cv"] == pytest.approx(np.std([0.5, 0.7], ddof=1) / 0.6)  # a mean below one still has a CV
    assert t[["std", "cv"]].iloc[:3].isna().to_numpy().tolist() == [[True, True], [True, True], [False, True]]
    empty = consistency_table(kept.iloc[:0])
    assert empty.empty and list(empty.columns) == list(t.columns)
