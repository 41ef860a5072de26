"""A real SLURM run: a single-node cluster on localhost, the workflow submitted through the SLURM profile.

Runs where SLURM's daemons are installed (`workflow/scripts/slurm_local.sh start` installs them from
Debian's packages) and the test runs as root; it starts the daemons itself and stops them by their
recorded process ids. CI does not install them: the install and the run (about 4 min together) would
take the suite past its 20 minutes, so there the test is skipped and says why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess

import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.test_faults import TINY, P
from tests.workflow_helpers import write_config

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="starts SLURM's daemons: needs root"),
    pytest.mark.skipif(
        not shutil.which("slurmctld"),
        reason="SLURM's daemons are not installed: `workflow/scripts/slurm_local.sh start` installs them (root, apt)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
        reason="pip install -e '.[slurm]' for the SLURM executor plugin",
    ),
]


# a one-shot experiment: the shortest chain of jobs (each SLURM stage costs a status-check delay)
ONESHOT = {
    "name": "tiny-l1",
    "model": {"family": "resnet", "depth": 8, "width": 0.5},
    "method": "l1",
    "prune": {"settings": {"A": {"ratios": [0.5, 0.5, 0.5]}}},
    "targets": ["A"],
    "finetune": {"epochs": 1, "batch_size": 64, "lr": 0.002, "schedule": "constant"},
}


def test_workflow_runs_to_completion_through_slurm(tmp_path):
    tiny = {**TINY, "experiments": [ONESHOT], "train.epochs": 2, "train.milestones": [1]}
    config = write_config(tmp_path / "tiny.yaml", **tiny)
    env = {**os.environ, "PRUNESTUDY_SLURM_TIMEOUT": "900"}
    res = subprocess.run(
        [
            "bash",
            str(ROOT / "workflow/scripts/slurm_local.sh"),
            "run",
            "--directory",
            str(tmp_path),
            "--configfile",
            str(config),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "cluster up" in out and "stopped" in out
    assert "Finished jobid" in out or "steps (100%) done" in out
    runs = pd.read_csv(tmp_path / P.runs(experiment=ONESHOT["name"]))
    assert set(runs["arm"]) == {"base", "pruned", "scratch-E", "scratch-B"}
    # the daemons are gone again
    ps = subprocess.run(["ps", "-eo", "stat=,comm="], capture_output=True, text=True).stdout.splitlines()
    assert not [p for p in ps if p.split()[1:] in (["slurmctld"], ["slurmd"]) and not p.startswith("Z")]
    assert (tmp_path / ".snakemake/slurm_logs").is_dir()
