import copy
import subprocess
import sys

import pytest
import yaml

from prunestudy.config import ConfigError, validate
from tests.conftest import ROOT


def test_default_and_paper_configs_validate():
    for name in ("config.yaml", "paper.yaml"):
        c = validate(yaml.safe_load((ROOT / "config" / name).read_text()))
        assert c["prune"]["max_prunes"] >= 1 and c["seeds"]


def test_defaults_are_filled():
    c = validate({})
    assert c["train"]["momentum"] == 0.9 and c["data"]["augment"]["pad"] == 0
    assert c["scratch_b"]["max_factor"] == 2


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"bogus": 1}, "<top level>"),
        ({"train": {"epochs": -1, "batch_size": 8, "lr": 0.1}}, "train.epochs"),
        ({"train": {"epochs": "ten", "batch_size": 8, "lr": 0.1}}, "train.epochs"),
        ({"budgets": [0.5, 1.2]}, "budgets.1"),
        ({"budgets": [0.0]}, "budgets.0"),
        ({"seeds": []}, "seeds"),
        ({"data": {"name": "mnist"}}, "data.name"),
        ({"model": {"depth": 12}}, "model.depth"),
        ({"prune": {"max_prunes": 5000}}, "prune.max_prunes"),
        ({"prune": {"nesterov": True}}, "prune"),
        ({"data": {"download": "yes"}}, "data.download"),
    ],
)
def test_bad_values_name_the_key(cfg, change, key):
    bad = copy.deepcopy({k: v for k, v in cfg.items() if k not in change}) | change
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate(bad)


def test_snakemake_stops_before_any_job_on_bad_config(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(ROOT), "--config", "budgets=[1.5]"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode != 0
    assert "budgets" in res.stderr + res.stdout
    assert "rule train_base" not in res.stdout
