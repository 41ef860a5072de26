"""Damage a finished study, then run plain `snakemake` twice: the first run finds every damage, moves it aside
and rebuilds it and everything made from it, ending identical to an undamaged run; the second has nothing
to do. A dry run only reports. One tiny study with an iterative, a masked and a regularised method
(the regularised one's large network shares its spec and seed with a plainly trained one).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prunestudy.io import paths
from prunestudy.io.integrity import QUARANTINE
from tests.workflow_helpers import snakemake

pytestmark = pytest.mark.slow

STUDY = {
    "study": "tiny",
    "seeds": [1],
    "device": "cpu",
    "data": {"name": "digits", "val_size": 0.15, "test_size": 0.25, "augment": {"pad": 1, "pad_mode": "constant"}},
    "train": {"epochs": 4, "batch_size": 64, "lr": 0.1, "milestones": [3]},
    "experiments": [
        {
            "name": "wrn-fisher",
            "model": {"family": "wrn", "depth": 10, "width": 1},
            "method": "fisher",
            "prune": {"every": 4, "max_prunes": 24, "chunk": 12, "lr": 0.002, "batch_size": 32},
            "targets": [0.8],
        },
        {
            "name": "magnitude",
            "model": {"family": "resnet", "depth": 8, "width": 0.5},
            "method": "magnitude",
            "targets": [0.5],
            "finetune": {"epochs": 1, "batch_size": 64, "lr": 0.002, "schedule": "constant"},
        },
        {
            "name": "slimming",
            "model": {"family": "resnet", "depth": 8, "width": 0.5},
            "method": "slimming",
            "prune": {"sparsity": 0.01},
            "targets": [0.3],
            "finetune": {"epochs": 1, "batch_size": 64, "lr": 0.002, "schedule": "constant"},
        },
    ],
    "latency": {"batch_size": 64, "repeats": 2, "warmup": 0},
    "analysis": {"grid_points": 3, "calibration_studies": 200},
}
P = paths.StudyPaths("results/tiny")
NOTHING = "Nothing to be done"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("reference")
    (work / "config.yaml").write_text(yaml.safe_dump(STUDY))
    snakemake(work, work / "config.yaml")
    return work


@pytest.fixture
def study(reference, tmp_path) -> Path:
    """A copy of the finished study: results hard-linked (every write replaces a file), metadata copied."""
    shutil.copytree(reference / "results", tmp_path / "results", copy_function=os.link)
    shutil.copytree(reference / ".snakemake", tmp_path / ".snakemake", ignore=shutil.ignore_patterns("locks"))
    shutil.copy2(reference / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def _numbers(work: Path) -> dict:
    """Every trained network's spec and errors, and every trajectory's steps: what a damaged run must match."""
    root = work / "results/tiny"
    out = {}
    for record in sorted(root.rglob("metrics.json")):
        if QUARANTINE not in record.parts:
            m = json.loads(record.read_text())
            out[str(record.relative_to(root))] = (m["spec_id"], m["params"], m["val_error"], m["test_error"])
    for traj in root.rglob("trajectory.csv"):
        out[str(traj.relative_to(root))] = pd.read_csv(traj).drop(columns="elapsed_s").to_dict("list")
    return out


def _run(work: Path, *args: str):
    return snakemake(work, work / "config.yaml", *args)


def _replace(path: Path, data: bytes) -> None:
    """Damage ``path`` through a new file (never through the hard link the reference shares)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _two_runs(work: Path, reference: Path, damaged: list[Path]) -> str:
    """Run twice; the first must name each damaged file and rebuild to the reference's numbers."""
    first = _run(work)
    said = first.stdout + first.stderr
    for path in damaged:
        assert str(path.relative_to(work)) in said, (path, said[-3000:])
    assert _numbers(work) == _numbers(reference)
    second = _run(work)
    assert NOTHING in second.stdout + second.stderr
    return said


def test_leaf_damages_are_found_reported_by_a_dry_run_and_rebuilt_by_a_plain_run(study, reference):
    r = study / "results/tiny"
    mask = r / "magnitude/arch/seed1/target0.5/mask.pt"
    _replace(mask, mask.read_bytes()[:2000])  # truncated
    e, b = (r / f"wrn-fisher/scratch/{x}/target0.8/seed1/model.pt" for x in "EB")
    os.rename(e, e.with_name("swap"))  # two checkpoints swapped with mv: sizes alike, times kept
    os.rename(b, e)
    os.rename(e.with_name("swap"), b)
    edited = r / "slimming/scratch/B/target0.3/seed1/metrics.json"
    record = json.loads(edited.read_text())
    _replace(edited, json.dumps({**record, "test_error": 0.0}).encode())  # a better number, typed in
    deleted = r / "magnitude/scratch/E/target0.5/seed1/metrics.json"
    deleted.unlink()
    stray = r / "wrn-fisher/scratch/E/target0.8/seed1/.model.pt.x1y2.tmp"
    stray.write_bytes(b"half a checkpoint")

    dry = _run(study, "-n")
    assert "a run without -n moves them" in dry.stderr and mask.exists() and stray.exists()
    said = _two_runs(study, reference, [mask, e, b, edited])
    assert "content is not what its record vouches for" in said and "matches its digest" in said
    assert not stray.exists()
    kept = {p.name for p in (r / QUARANTINE).rglob("*") if p.is_file()}
    assert {"mask.pt", "model.pt", "metrics.json"} <= kept  # moved aside, not deleted


def test_a_wrong_large_network_and_a_swapped_step_checkpoint_are_rebuilt(study, reference):
    """The plainly trained ResNet copied over the Slimming-trained one (same spec id, same seed), and one step
    checkpoint of the Fisher trajectory replaced by another step's."""
    bases = study / "results/tiny/bases"
    (plain,) = [p for p in bases.iterdir() if p.name.startswith("resnet8") and "slimming" not in p.name]
    (slim,) = [p for p in bases.iterdir() if "slimming" in p.name]
    for name in ("model.pt", "metrics.json"):
        _replace(slim / "seed1" / name, (plain / "seed1" / name).read_bytes())
    steps = study / P.prune_dir(experiment="wrn-fisher", seed=1) / "steps"
    _replace(steps / "step00003.pt", (steps / "step00005.pt").read_bytes())
    said = _two_runs(study, reference, [slim / "seed1/metrics.json", steps / "step00003.pt"])
    assert "it is the record of" in said  # the plain network's record, where the Slimming one's belongs


def test_deleted_intermediate_files_are_rebuilt_with_everything_made_from_them(study, reference):
    bases = study / "results/tiny/bases"
    (plain,) = [p for p in bases.iterdir() if p.name.startswith("resnet8") and "slimming" not in p.name]
    (plain / "seed1/model.pt").unlink()
    steps = study / P.prune_dir(experiment="wrn-fisher", seed=1) / "steps"
    (steps / "step00020.pt").unlink()
    (study / "results/tiny/slimming/arch/seed1/target0.3/spec.json").unlink()
    said = _two_runs(study, reference, [steps / "step00020.pt"])
    assert "step00020.pt: missing" in said
    assert (plain / "seed1/model.pt").exists()
