"""The three additions of round 3 through the real workflow, by the same rules as every other method:
Taylor pruning (iterative) of a MobileNetV2 (depthwise convolutions), and ThiNet (one-shot, reading
activations) of a CIFAR ResNet, on a tiny digits study."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from prunestudy.io import paths
from tests.workflow_helpers import snakemake

pytestmark = pytest.mark.slow

STUDY = {
    "study": "additions",
    "seeds": [1],
    "device": "cpu",
    "data": {"name": "digits", "val_size": 0.15, "test_size": 0.25, "augment": {"pad": 1, "pad_mode": "constant"}},
    "train": {"epochs": 3, "batch_size": 64, "lr": 0.1, "milestones": [2]},
    "experiments": [
        {
            "name": "taylor-mobilenet",
            "model": {"family": "mobilenetv2", "width": 0.25},
            "method": "taylor",
            "prune": {"every": 3, "max_prunes": 12, "chunk": 6, "lr": 0.002, "batch_size": 32},  # 12 of 320 channels
            "targets": [0.999],
        },
        {
            "name": "thinet-resnet",
            "model": {"family": "resnet", "depth": 8, "width": 0.5},
            "method": "thinet",
            "prune": {"settings": {"half": {"keep": 0.5}}},
            "targets": ["half"],
            "finetune": {"epochs": 1, "batch_size": 64, "lr": 0.002, "schedule": "constant"},
        },
    ],
    "latency": {"batch_size": 64, "repeats": 2, "warmup": 0},
    "analysis": {"grid_points": 3, "calibration_studies": 200},
}


def test_taylor_thinet_and_mobilenetv2_run_through_the_workflow(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(STUDY))
    snakemake(tmp_path, tmp_path / "config.yaml")
    p = paths.StudyPaths("results/additions")
    for name in ("taylor-mobilenet", "thinet-resnet"):
        runs = pd.read_csv(tmp_path / p.runs(experiment=name))
        assert set(runs["arm"]) == {"base", "pruned", "scratch-E", "scratch-B"}, name
        base, pruned = (runs.loc[runs["arm"] == a, "params"].iloc[0] for a in ("base", "pruned"))
        assert pruned < base, name
    trajectory = pd.read_csv(tmp_path / p.trajectory(experiment="taylor-mobilenet", seed=1))
    assert trajectory["step"].tolist() == list(range(1, 13))
    record = json.loads((tmp_path / p.arch_metrics(experiment="thinet-resnet", seed=1, target="half")).read_text())
    assert record["extra"]["pruning"]["setting"] == "half" and record["spec"]["mids"] == [4, 8, 16]
    claims = pd.read_csv(tmp_path / p.study_table(table="claims"))
    assert set(claims["experiment"]) == {"taylor-mobilenet", "thinet-resnet"}
