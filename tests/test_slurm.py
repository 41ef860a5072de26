"""A real SLURM run: a single-node cluster on localhost, the workflow submitted through the SLURM profile,
and a data-parallel job of two tasks started by srun, as a job over several nodes is.

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
import sys

import pandas as pd
import pytest
import torch

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


def test_two_srun_tasks_train_what_one_process_trains(tmp_path):
    """The launch of a job over several nodes (the workflow's srun line, one task per GPU, ranks from SLURM's
    environment), for real on one node: two CPU tasks over gloo, held to the same one-process reference as
    torchrun's two. One node cannot show the rendezvous across nodes."""
    from tests import test_distributed as ddp
    from tests.test_profiles import _planned

    # the workflow's own launch line for a job of two GPUs on each of two nodes, one core per process
    (tmp_path / "two.yaml").write_text("device: cuda\nthreads: 1\ngpu: {per_job: 4, nodes: 2}\n")
    launch = _planned(tmp_path, str(ROOT / "config/liu.yaml"), "two.yaml", profile="slurm")["train_base"][0]["launch"]
    assert launch.startswith("MASTER_ADDR=$(hostname) srun ") and "--ntasks-per-node 2" in launch
    script = ROOT / "workflow/scripts/slurm_local.sh"
    subprocess.run(["bash", str(script), "start"], check=True, capture_output=True, timeout=600)
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        step = f"{launch} {sys.executable} {ddp.__file__} {tmp_path}"
        cmd = ["sbatch", "--wait", "--nodes=1", "--ntasks-per-node=2", f"--output={tmp_path}/job.log", "--wrap", step]
        res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["bash", str(script), "stop"], capture_output=True, timeout=120)
    log = (tmp_path / "job.log").read_text() if (tmp_path / "job.log").exists() else ""
    assert res.returncode == 0, res.stderr + log[-4000:]
    assert "(slurm)" in log  # the ranks came from the srun step's environment, not torchrun's
    ref, got = ddp._reference(ddp._digits()), ddp._result(tmp_path)
    for (loss, val), (ref_loss, ref_val) in zip(got["history"], ref["history"], strict=True):
        assert loss == pytest.approx(ref_loss, rel=1e-6) and val == ref_val
    for name, w in ref["state"].items():
        torch.testing.assert_close(got["state"][name], w, rtol=1e-5, atol=1e-6, msg=name)
        torch.testing.assert_close(ddp._result(tmp_path, rank=1)["state"][name], got["state"][name], rtol=0, atol=0)
