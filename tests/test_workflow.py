"""End-to-end: the default workflow really runs, and a changed config reruns only what it touches."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prunestudy.analysis.claims import CLAIMS
from prunestudy.io import paths
from prunestudy.io.artifacts import file_digest
from prunestudy.pruning import arms, masks
from tests.browser import CHROMIUM, WALK_REPORT, open_page
from tests.conftest import ROOT
from tests.workflow_helpers import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

P = paths.StudyPaths("results/digits")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One complete run of the embedded default config, shared by the tests below."""
    work = tmp_path_factory.mktemp("default")
    config = write_config(work / "config.yaml")
    snakemake(work, config)
    return work, config


def test_default_run_produces_every_artefact(default_run):
    work, config = default_run
    cfg = yaml.safe_load(config.read_text())
    exp = cfg["experiments"][0]
    e = exp["name"]
    runs = pd.read_csv(work / P.runs(experiment=e))
    assert set(runs["experiment"]) == {e}
    n_seeds, n_budgets = len(cfg["seeds"]), len(exp["targets"])
    fam = exp["families"]
    expected = {
        "base": n_seeds,
        "pruned": n_seeds * n_budgets,
        "scratch-E": n_seeds * n_budgets,
        "scratch-B": n_seeds * n_budgets,
        "width": n_seeds * len(fam["width"]),
        "bottleneck": n_seeds * len(fam["bottleneck"]),
        "scaled": n_seeds * len(fam["scaled"]["targets"]),
    }
    assert runs["arm"].value_counts().to_dict() == expected
    assert runs["test_error"].between(0, 1).all() and runs["latency_ms"].gt(0).all()
    # quality of the default: >= 97% mean test accuracy for the base network
    assert 1 - runs.loc[runs["arm"] == "base", "test_error"].mean() >= 0.97
    # every target of the config is reached, each sampled step at or under its target
    base_params = runs.loc[runs["arm"] == "base", "params"].iloc[0]
    pruned = runs[runs["arm"] == "pruned"]
    assert (pruned["params"] <= pruned["target"] * base_params).all()
    assert sorted(set(pruned["target"])) == sorted(exp["targets"])
    # Scratch-B never trains fewer epochs than Scratch-E, and is capped at 2x
    epochs_e = runs[runs["arm"] == "scratch-E"].set_index(["target", "seed"])["epochs"]
    epochs_b = runs[runs["arm"] == "scratch-B"].set_index(["target", "seed"])["epochs"]
    assert (epochs_b >= epochs_e).all() and (epochs_b <= 2 * epochs_e).all()
    scaled = [
        json.loads(Path(p).read_text()) for p in runs.loc[runs["arm"] == "scaled", "path"].map(lambda p: work / p)
    ]
    assert all(abs(m["params"] - m["extra"]["target_params"]) <= 0.01 * m["extra"]["target_params"] for m in scaled)
    for seed in cfg["seeds"]:
        traj = pd.read_csv(work / P.trajectory(experiment=e, seed=seed))
        assert traj["step"].tolist() == list(range(1, exp["prune"]["max_prunes"] + 1))
        resume = paths.chunk_resume(work / P.prune_dir(experiment=e, seed=seed), 0).parent
        assert not resume.exists() or not any(resume.iterdir())
    for table in paths.TABLES:
        for ext in ("csv", "md", "tex", "html"):
            assert (work / P.table(experiment=e, table=table, ext=ext)).stat().st_size > 0
    study = pd.read_csv(work / P.study_table(table="claims"))
    assert set(study["verdict"]) <= {"supported", "contradicted", "inconclusive"}
    # one row per (claim, experiment) that can test it: Liu's two everywhere, the guided claim where guided
    # architectures are trained, Crowley's where families are, the blog's control where a long base is, the
    # lottery claim at each learning rate where lottery tickets are
    expected_rows = []
    for x in cfg["experiments"]:
        for c in CLAIMS:
            applies = {
                "liu-guided": x.get("guided", False),
                "blog-long-base": x.get("long_base", False),
            }.get(c.id, "families" in x if c.families_only else True)
            if applies:
                expected_rows.append((x["name"], c.id))
        lrs = sorted(x.get("lottery", {}).get("lrs", []), reverse=True)  # then one lottery claim per rate
        expected_rows += [(x["name"], paths.at_lr("liu-lottery", lr)) for lr in lrs]
    assert list(zip(study["experiment"], study["claim"], strict=True)) == expected_rows
    for x in cfg["experiments"]:  # each experiment's claims table is its rows of the study's, Holm included
        mine = pd.read_csv(work / P.table(experiment=x["name"], table="claims"))
        pd.testing.assert_frame_equal(mine, study[study["experiment"] == x["name"]].reset_index(drop=True))
    for fig in paths.figures(iterative=True):
        png, pdf = (work / P.figure(experiment=e, figure=fig, ext=ext) for ext in ("png", "pdf"))
        assert png.stat().st_size > 5000 and pdf.exists()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_the_report_renders_every_claims_table_and_figure_in_chromium(default_run):
    """The report opened in headless Chromium, walked as a reader would: every section and subsection,
    the eye of every result; no console error, every figure decodes, every claims table has its rows."""
    work, config = default_run
    cfg = yaml.safe_load(config.read_text())
    snakemake(work, config, "--report", str(work / "report.html"))
    with open_page(work / "report.html") as page:
        front = page.evaluate("document.body.innerText")
        shown = page.evaluate(WALK_REPORT)
        assert page.errors == []
    # the workflow page ends with the resolved config, defaults filled in
    appendix = front[front.index("Appendix: the study's configuration") :]
    assert f"study: {cfg['study']}" in appendix and "jobs_per_gpu: 1" in appendix and "guided: false" in appendix
    assert all(item["shown"] for item in shown), [i for i in shown if not i["shown"]]
    sections = [item["section"] for item in shown]
    names = [e["name"] for e in cfg["experiments"]]
    expected = {paths.STUDY_SECTION, *map(paths.report_section, names)}
    assert sorted(set(sections)) == sorted(expected)
    for e in cfg["experiments"]:
        mine = [i for i in shown if i["section"] == paths.report_section(e["name"])]
        figures = {i["name"]: i["width"] for i in mine if i["name"].endswith(".png")}
        iterative = e["method"] == "fisher"
        assert set(figures) == {f"{f}.png" for f in paths.figures(iterative)} and min(figures.values()) > 300
        claims = next(i for i in mine if i["name"] == "claims.html")
        assert claims["subsection"] == paths.REPORT_SECTIONS["claims"] == min(i["subsection"] for i in mine)
        assert claims["rows"] == len(pd.read_csv(work / P.table(experiment=e["name"], table="claims")))
        assert "verdict" in claims["header"]
    study = next(i for i in shown if i["section"] == paths.STUDY_SECTION)
    assert study["rows"] == len(pd.read_csv(work / P.study_table(table="claims"))) > 0
    html = (work / "report.html").read_text()
    assert "Verdict rule" in html and "Holm family" in html and "System Message" not in html


def test_default_run_prunes_once_with_each_of_liu_et_al_s_methods(default_run):
    work, config = default_run
    cfg = yaml.safe_load(config.read_text())
    oneshot = [e for e in cfg["experiments"] if e["method"] != "fisher"]
    assert {e["method"] for e in oneshot} == {"slimming", "l1", "magnitude", "sss"}
    n_seeds = len(cfg["seeds"])
    for exp in oneshot:
        e, n = exp["name"], len(exp["targets"])
        runs = pd.read_csv(work / P.runs(experiment=e))
        counts = runs["arm"].value_counts().to_dict()
        guided = {"guided": n_seeds * n, "uniform": n_seeds * n} if exp.get("guided") else {}
        lrs = exp.get("lottery", {}).get("lrs", [])
        lottery = {arm: n_seeds * n * len(lrs) for arm in arms.LOTTERY} if lrs else {}
        assert counts == {
            "base": n_seeds * (n if exp["method"] == "sss" else 1),
            "pruned": n_seeds * n,
            "scratch-E": n_seeds * n,
            "scratch-B": n_seeds * n,
            **guided,
            **lottery,
        }, (e, counts)
        if lottery:
            _check_lottery(work, runs, lrs, cfg["train"]["epochs"])
        if guided:  # the guided net is the seeds' mean widths; uniform has its params, trained as long
            g, u = (runs[runs["arm"] == a].set_index(["target", "seed"]) for a in ("guided", "uniform"))
            assert ((u["params"] - g["params"]).abs() <= 0.05 * g["params"]).all()
            assert (u["epochs"] == g["epochs"]).all()
            assert g["spec_id"].groupby("target").nunique().eq(1).all()  # one guided architecture per target
        base = runs[runs["arm"] == "base"]
        pruned = runs[runs["arm"] == "pruned"]
        if exp["method"] == "sss":  # how good its large network is depends on how many blocks gamma removed
            factors = [json.loads(Path(work / p).read_text())["extra"]["pruning"]["factors"] for p in pruned["path"]]
            assert all(len(f) == 6 for f in factors) and any(0.0 in f.values() for f in factors)
        else:
            assert 1 - base["test_error"].mean() >= 0.9, e
        assert (pruned["params"] < base["params"].max()).all(), e  # nonzeros for the masks
        scratch_b = runs[runs["arm"] == "scratch-B"].set_index(["target", "seed"])
        tuned = pruned.set_index(["target", "seed"])
        epochs_e = cfg["train"]["epochs"]
        for key, row in scratch_b.iterrows():  # Scratch-B's ratio is the pruned network's FLOPs, capped at 2x
            ratio = base["flops"].iloc[0] / tuned.loc[key, "flops"]
            assert row["epochs"] == min(int(epochs_e * ratio), 2 * epochs_e), (e, key)
        for table in paths.TABLES:
            assert (work / P.table(experiment=e, table=table)).stat().st_size > 0
        for fig in paths.figures(iterative=False):
            assert (work / P.figure(experiment=e, figure=fig)).stat().st_size > 5000
        if exp["method"] == "magnitude":
            for seed in cfg["seeds"]:
                for t in exp["targets"]:
                    _, mask = masks.load(work / P.arch_mask(experiment=e, seed=seed, target=paths.target_label(t)))
                    dense = sum(m.numel() for m in mask.values())
                    assert sum(int((~m).sum()) for m in mask.values()) == int(dense * t)


def _check_lottery(work: Path, runs: pd.DataFrame, lrs: list[float], epochs: int) -> None:
    """Each lottery run trained at its learning rate for Scratch-E's epochs; each ticket from its own seed's
    initial weights; one claim per learning rate."""
    lottery = runs[runs["arm"].isin(arms.LOTTERY)]
    assert sorted(lottery["lr"].unique()) == sorted(lrs) and (lottery["epochs"] == epochs).all()
    base = runs[runs["arm"] == arms.BASE].set_index("seed")["path"]
    for row in lottery.itertuples():
        record = json.loads(Path(work / row.path).read_text())
        assert record["recipe"]["lr"] == row.lr
        if row.arm == arms.WINNING_TICKET:
            assert record["inputs"]["init"] == file_digest(work / Path(base[row.seed]).with_name("init.pt"))
    claims = pd.read_csv(work / P.table(experiment=runs["experiment"].iloc[0], table="claims"))
    assert {paths.at_lr("liu-lottery", lr) for lr in lrs} <= set(claims["claim"])


def _rules(jobs) -> Counter:
    return Counter(rule for rule, _ in jobs)


# the jobs that read every run of an experiment (or of the study): they follow any change to a run
AGGREGATIONS = {"latency", "collect", "compare", "figures", "figures_oneshot", "claims", "calibrate"}


def test_nothing_reruns_after_a_complete_run(default_run):
    work, config = default_run
    assert planned_jobs(work, config) == []


def _experiments(config) -> list[dict]:
    return yaml.safe_load(config.read_text())["experiments"]


def test_changing_a_statistics_option_reruns_only_the_analysis(default_run):
    work, config = default_run
    jobs = planned_jobs(work, write_config(work / "alpha.yaml", **{"analysis.alpha": 0.01}))
    assert _rules(jobs) == Counter({"compare": len(_experiments(config)), "claims": 1, "calibrate": 1})


def test_changing_how_many_jobs_share_a_gpu_reruns_nothing(default_run):
    work, _ = default_run
    assert planned_jobs(work, write_config(work / "slots.yaml", **{"gpu.jobs_per_gpu": 3})) == []


def test_changing_the_thread_count_reruns_every_training_job(default_run):
    """Threads shape the arithmetic (results differ between 1 and 2), so they are part of a job's identity."""
    work, _ = default_run
    rules = set(_rules(planned_jobs(work, write_config(work / "threads.yaml", threads=2))))
    trained = {"train_base", "oneshot", "oneshot_masked", "prune_chunk", "scratch", "family", "scaled", "guide"}
    assert trained <= rules and "latency" in rules


def test_changing_a_latency_option_remeasures_latency_only_and_what_follows(default_run):
    work, config = default_run
    jobs = planned_jobs(work, write_config(work / "latency.yaml", **{"latency.repeats": 3}))
    n = len(_experiments(config))
    analysis = {"collect": n, "compare": n, "figures": 1, "figures_oneshot": n - 1, "claims": 1, "calibrate": 1}
    assert _rules(jobs) == Counter({"latency": n, **analysis})


def test_adding_a_seed_runs_only_that_seeds_jobs_and_the_aggregations(default_run):
    work, config = default_run
    seeds = yaml.safe_load(config.read_text())["seeds"]
    new = max(seeds) + 1
    jobs = planned_jobs(work, write_config(work / "seed.yaml", seeds=[*seeds, new]))
    per_seed = [(r, wc) for r, wc in jobs if "seed" in wc]
    # the guided architectures average every pruning seed, so every seed's guided networks change with it
    assert per_seed and all(wc["seed"] == str(new) for r, wc in per_seed if r != "guide")
    guided = [e for e in _experiments(config) if e.get("guided")]
    n_guide = sum(2 * len(e["targets"]) for e in guided) * (len(seeds) + 1)
    assert _rules(jobs)["guide"] == n_guide
    assert _rules(jobs)["train_base"] == 4  # WRN, VGG (slimming), ResNet (shared by L1 and magnitude), SSS
    assert {r for r, wc in jobs if "seed" not in wc} == AGGREGATIONS


def test_changing_scratch_epochs_reruns_only_scratch_arms_and_what_follows(default_run):
    work, _ = default_run
    jobs = planned_jobs(work, write_config(work / "scratch.yaml", **{"scratch_e.epochs": 12}))
    assert set(_rules(jobs)) == {"scratch", "lottery", *AGGREGATIONS}  # the lottery arms train Scratch-E's epochs


def test_adding_a_lottery_learning_rate_runs_only_its_lottery_runs_and_the_aggregations(default_run):
    work, config = default_run
    (i, e), *_ = [(i, e) for i, e in enumerate(_experiments(config)) if e.get("lottery", {}).get("lrs")]
    lrs = [*e["lottery"]["lrs"], 0.05]
    jobs = planned_jobs(work, write_config(work / "lr.yaml", **{f"experiments.{i}.lottery.lrs": lrs}))
    lottery = [wc for r, wc in jobs if r == "lottery"]
    n_seeds = len(yaml.safe_load(config.read_text())["seeds"])
    assert len(lottery) == 2 * n_seeds * len(e["targets"]) and {wc["lr"] for wc in lottery} == {"0.05"}
    assert {r for r, _ in jobs} - {"lottery"} <= AGGREGATIONS


@pytest.fixture(scope="module")
def full_plan(default_run, tmp_path_factory):
    """Every job a fresh run of the default config plans: what 'everything' means in the rerun table."""
    _, config = default_run
    return Counter(_rules(planned_jobs(tmp_path_factory.mktemp("fresh"), config)))


def test_changing_scratch_b_s_cap_reruns_only_the_scratch_b_arm_and_what_follows(default_run):
    work, _ = default_run
    jobs = planned_jobs(work, write_config(work / "cap.yaml", **{"scratch_b.max_factor": 3}))
    assert set(_rules(jobs)) == {"scratch", *AGGREGATIONS}
    assert {wc["regime"] for r, wc in jobs if r == "scratch"} == {"B"}


@pytest.mark.parametrize(
    "change",
    [{"train.milestones": [5, 10]}, {"data.split_seed": 1}, {"device": "cuda"}, {"gpu.compile": True}],
    ids=["train.milestones", "data.split_seed", "device", "gpu.compile"],
)
def test_changing_the_recipe_data_device_or_compilation_reruns_everything(default_run, full_plan, change):
    """Each changes every large network, so every job after one reruns too (the rerun table's 'everything')."""
    work, _ = default_run
    assert Counter(_rules(planned_jobs(work, write_config(work / "changed.yaml", **change)))) == full_plan


def test_changing_a_model_option_reruns_everything_of_that_experiment_only(default_run, tmp_path):
    work, config = default_run
    cfg = [16, 16, "M", 32, 32]
    jobs = planned_jobs(work, write_config(work / "model.yaml", **{"experiments.1.model.cfg": cfg}))
    assert {wc["experiment"] for r, wc in jobs if "experiment" in wc} == {"vgg-slimming"}
    # exactly the jobs a fresh run of that experiment alone plans (its bases, arms, tables, figures, claims)
    alone = _experiments(config)[1] | {"model": {"family": "vgg", "cfg": cfg}}
    fresh = planned_jobs(tmp_path, write_config(tmp_path / "alone.yaml", experiments=[alone]))
    assert Counter(_rules(jobs)) == Counter(_rules(fresh))


def test_changing_a_prune_option_reruns_pruning_onwards_but_not_base_training(default_run):
    work, _ = default_run
    jobs = planned_jobs(work, write_config(work / "prune.yaml", **{"experiments.0.prune.lr": 0.003}))
    rules = set(_rules(jobs))
    assert {"prune_chunk", "trajectory_wrn_fisher", "scratch", "scaled", "collect", "compare"} <= rules
    assert "train_base" not in rules and "family" not in rules and "oneshot" not in rules
    assert {wc["experiment"] for r, wc in jobs if "experiment" in wc} == {"wrn-fisher"}


def test_bumping_a_stage_number_reruns_exactly_that_stage_and_what_follows(default_run, tmp_path):
    """The code-change policy: a copy of the package with the latency stage's number bumped."""
    import shutil

    work, config = default_run
    shutil.copytree(ROOT / "src" / "prunestudy", tmp_path / "prunestudy")
    stages = tmp_path / "prunestudy" / "io" / "stages.py"
    bumped, n_subs = re.subn(r'"latency": (\d+)', lambda m: f'"latency": {int(m.group(1)) + 1}', stages.read_text())
    assert n_subs == 1
    stages.write_text(bumped)
    jobs = planned_jobs(work, config, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    n = len(_experiments(config))
    analysis = {"collect": n, "compare": n, "figures": 1, "figures_oneshot": n - 1, "claims": 1, "calibrate": 1}
    assert _rules(jobs) == Counter({"latency": n, **analysis})


def test_paper_config_dry_runs_without_cifar(tmp_path):
    cfg = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    (exp,) = cfg["experiments"]
    jobs = planned_jobs(tmp_path, ROOT / "config/paper.yaml")
    rules = _rules(jobs)
    n_seeds = len(cfg["seeds"])
    n_chunks = -(-exp["prune"]["max_prunes"] // exp["prune"]["chunk"])
    assert rules["prune_chunk"] == n_seeds * n_chunks
    assert rules["scratch"] == 2 * n_seeds * len(exp["targets"])
    assert {wc["regime"] for r, wc in jobs if r == "scratch"} == {"E", "B"}
    fam = exp["families"]
    assert rules["family"] == n_seeds * (len(fam["width"]) + len(fam["bottleneck"]))
    assert rules["scaled"] == n_seeds * len(fam["scaled"]["targets"])
    assert rules["train_base"] == n_seeds and rules["trajectory_wrn40_2_fisher"] == n_seeds


@pytest.mark.parametrize("name", ["liu.yaml", "liu-cifar100.yaml", "liu-imagenet.yaml"])
def test_liu_configs_dry_run_without_their_data_with_every_lottery_job(tmp_path, name):
    cfg = yaml.safe_load((ROOT / "config" / name).read_text())
    jobs = planned_jobs(tmp_path, ROOT / "config" / name)
    n_seeds, experiments = len(cfg["seeds"]), cfg["experiments"]
    lottery = sum(2 * len(e.get("lottery", {}).get("lrs", [])) * len(e["targets"]) for e in experiments)
    assert _rules(jobs)["lottery"] == n_seeds * lottery
    assert {wc["experiment"] for r, wc in jobs if r == "scratch"} == {e["name"] for e in experiments}
    if lottery:
        assert {(wc["arm"], wc["lr"]) for r, wc in jobs if r == "lottery"} == {
            (a, lr) for a in arms.LOTTERY for lr in ("0.1", "0.01")
        }


def test_the_long_base_control_trains_as_long_as_the_longest_scratch_b(tmp_path):
    """The blog's footnote on a tiny one-shot experiment: base-long trains for the longest Scratch-B budget,
    is pruned to the same target and fine-tuned (arm pruned-long), and the claims table tests it."""
    exp = {
        "name": "tiny-magnitude",
        "model": {"family": "resnet", "depth": 8, "width": 0.5},
        "method": "magnitude",
        "targets": [0.5],
        "long_base": True,
        "finetune": {"epochs": 1, "batch_size": 64, "lr": 0.002, "schedule": "constant"},
    }
    config = write_config(
        tmp_path / "c.yaml",
        study="tiny",
        seeds=[1],
        experiments=[exp],
        **{"train.epochs": 2, "train.milestones": [1], "latency.repeats": 2},
    )
    snakemake(tmp_path, config)
    p = paths.StudyPaths("results/tiny")
    runs = pd.read_csv(tmp_path / p.runs(experiment="tiny-magnitude"))
    assert runs["arm"].value_counts().to_dict() == {
        "base": 1,
        "base-long": 1,
        "pruned": 1,
        "pruned-long": 1,
        "scratch-E": 1,
        "scratch-B": 1,
    }
    longest = runs.loc[runs["arm"] == "scratch-B", "epochs"].max()
    assert (runs.loc[runs["arm"] == "base-long", "epochs"] == longest).all() and longest > 2
    claims = pd.read_csv(tmp_path / p.table(experiment="tiny-magnitude", table="claims")).set_index("claim")
    # the long base shares nothing with the seed's Scratch-B but the seed's label: an unpaired comparison
    assert not claims.loc["blog-long-base", "paired"] and claims.loc["blog-long-base", "n_seeds"] == 1


def test_the_readmes_compare_command_works_as_written(default_run, tmp_path):
    """The README's command, OLD and NEW replaced by two copies of the default run: identical, then one number
    changed in the copy is found."""
    import shlex
    import shutil

    work, _ = default_run
    readme = (ROOT / "README.md").read_text()
    command = next(
        line for line in readme.splitlines() if line.startswith("python workflow/scripts/compare_results.py")
    )
    shutil.copytree(work / "results", tmp_path / "results")
    argv = [a.replace("OLD", str(work)).replace("NEW", str(tmp_path)) for a in shlex.split(command)]
    script = [sys.executable, str(ROOT / argv[1]), *argv[2:]]
    same = subprocess.run(script, capture_output=True, text=True)
    assert same.returncode == 0 and "identical" in same.stdout, same.stdout + same.stderr
    runs = tmp_path / P.runs(experiment="resnet-l1")
    frame = pd.read_csv(runs)
    frame.loc[0, "test_error"] += 0.01
    frame.to_csv(runs, index=False)
    changed = subprocess.run(script, capture_output=True, text=True)
    assert changed.returncode == 1 and "resnet-l1/runs.csv: column test_error differs in 1 of" in changed.stdout
