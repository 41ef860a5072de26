"""Fault tolerance on real processes: killed jobs resume, and concurrent runs cannot corrupt results."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prunestudy.io import paths
from prunestudy.io.artifacts import load_checkpoint, read_json
from prunestudy.io.config import base_name, validate
from tests.workflow_helpers import snakemake, snakemake_cmd, write_config

pytestmark = pytest.mark.slow

TINY = {
    "study": "tiny",
    "seeds": [1],
    "train.epochs": 6,
    "train.milestones": [4],
    "experiments": [
        {
            "name": "wrn-fisher",
            "model": {"family": "wrn", "depth": 10, "width": 1},
            "method": "fisher",
            "prune": {"every": 4, "max_prunes": 40, "chunk": 20, "lr": 0.002, "batch_size": 32},
            "targets": [0.6],
        }
    ],
    "latency.repeats": 2,
    "latency.warmup": 0,
    "analysis.calibration_studies": 200,
}
P = paths.StudyPaths("results/tiny")
EXP = "wrn-fisher"


def _base_dir() -> str:
    """Where TINY's large network (seed 1) lives: its bases folder is named by the model's spec id."""
    c = validate(yaml.safe_load(write_config(Path(tempfile.mkdtemp()) / "c.yaml", **TINY).read_text()))
    e = c["experiments"][0]
    return P.base_dir(base=base_name(e, e["targets"][0], c["data"]), seed=1)


def _config(workdir: Path) -> Path:
    return write_config(workdir / "tiny.yaml", **TINY)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    snakemake(work, _config(work))
    return work


def _results(work: Path) -> dict:
    base = read_json(work / _base_dir() / "metrics.json")
    traj = pd.read_csv(work / P.trajectory(experiment=EXP, seed=1)).drop(columns="elapsed_s")
    scratch = read_json(work / P.scratch_metrics(experiment=EXP, regime="B", target="0.6", seed=1))
    return {
        "base": (base["val_error"], base["test_error"], [h["train_loss"] for h in base["extra"]["history"]]),
        "trajectory": traj.to_dict("list"),
        "scratch": (scratch["spec_id"], scratch["epochs"], scratch["test_error"]),
    }


def _start(work: Path, config: Path) -> subprocess.Popen:
    """Snakemake in the background, its output to a file (a pipe nobody reads could fill and block it)."""
    log = open(work / f"snakemake-{time.monotonic_ns()}.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(snakemake_cmd(work, config), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log_path = Path(log.name)
    return proc


def _wait_for(path: Path, key: str, at_least: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists():
            try:
                if load_checkpoint(path)[key] >= at_least:
                    return
            except Exception:  # the file is being replaced; look again
                pass
        if proc.poll() is not None:
            raise AssertionError(
                f"snakemake ended before {path} reached {key}={at_least}:\n{proc.log_path.read_text()[-4000:]}"
            )
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {path}")


def _kill_jobs(workdir: Path, pattern: str) -> int:
    """SIGKILL the job processes running in ``workdir`` whose command line contains ``pattern``."""
    killed = 0
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if pattern in cmd and "bash" not in cmd.split()[0] and os.readlink(proc / "cwd") == str(workdir):
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError):
            continue
    return killed


def test_killed_training_job_and_killed_workflow_resume_to_identical_results(reference, tmp_path):
    config = _config(tmp_path)
    # 1. SIGKILL the training job itself, mid-run: Snakemake sees a failed job and stops.
    proc = _start(tmp_path, config)
    resume = paths.train_resume(tmp_path / _base_dir())
    _wait_for(resume, "epoch", 2, proc)
    assert _kill_jobs(tmp_path, "prunestudy train --processes 1 --arm base") >= 1
    assert proc.wait(timeout=120) != 0
    assert resume.exists(), "Snakemake's cleanup of the failed job must leave the resume state alone"
    # 2. Run again until pruning is under way, then SIGKILL the whole Snakemake process group.
    proc = _start(tmp_path, config)
    chunk_resume = paths.chunk_resume(tmp_path / P.prune_dir(experiment=EXP, seed=1), 0)
    _wait_for(chunk_resume, "step", 5, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(chunk_resume)["step"]
    assert 5 <= killed_at < 20
    # 3. Unlocking and rerunning completes (incomplete outputs are redone; resume state survives) with the
    #    same results.
    snakemake(tmp_path, config, "--unlock")  # a killed Snakemake leaves its lock behind
    res = snakemake(tmp_path, config, "--rerun-incomplete")
    assert res.returncode == 0
    base_log = (tmp_path / P.log("train_base", Path(_base_dir()).parent.name, "seed1")).read_text()
    assert "resuming from epoch" in base_log
    chunk_log = (tmp_path / P.log("prune", EXP, "seed1", "chunk000")).read_text()
    assert f"resuming chunk at step {killed_at}" in chunk_log
    assert _results(tmp_path) == _results(reference)
    assert not chunk_resume.exists() and not resume.exists()


def test_concurrent_invocations_cannot_corrupt_results(reference, tmp_path):
    config = _config(tmp_path)
    first = _start(tmp_path, config)
    _wait_for(paths.train_resume(tmp_path / _base_dir()), "epoch", 1, first)
    second = subprocess.run(snakemake_cmd(tmp_path, config, cores=1), capture_output=True, text=True, timeout=300)
    # Snakemake refuses the second run: by its lock, or earlier, by the outputs the first marked incomplete
    refusal = second.stdout + second.stderr
    assert second.returncode != 0 and ("cannot be locked" in refusal or "Incomplete files" in refusal)
    assert "rule train_base" not in refusal
    assert first.wait(timeout=600) == 0, first.log_path.read_text()[-4000:]
    assert _results(tmp_path) == _results(reference)
