import os
import subprocess
import sys

from tests.conftest import ROOT


def test_a_job_does_not_import_the_slow_modules_it_never_uses():
    """Every workflow job starts a fresh Python: torch._dynamo (pulled in by torch.optim and torchvision),
    scikit-learn (pulled in by load_digits) and counting with the FLOP counter cost 1.5 to 3 s each per job."""
    code = """
import sys, torch
from prunestudy.training import data
from prunestudy.io.artifacts import versions
from prunestudy.arch import wrn
from prunestudy.training.data import Augment
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime
from prunestudy.training.loop import fit
d = data.load("digits")
spec = wrn(10, 1, in_channels=1, image_size=8)
fit(spec, d, Recipe(epochs=1, batch_size=256, lr=0.1), Augment(), seed=1, rt=Runtime.pick("cpu"))
spec.param_count(), spec.flops(), versions()
print(sorted(m for m in ("torch._dynamo", "sklearn", "torchvision", "torch.utils.flop_counter") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_snakemake_starts_without_waiting_for_an_absent_slurm_controller(tmp_path):
    """The suite puts a stub before SLURM's `scontrol`: with no slurmctld it answers at once, so the SLURM
    executor plugin's `scontrol show config` at every Snakemake start never waits out its 10 s timeout."""
    slow = tmp_path / "slurm-clients"
    slow.mkdir()
    for tool in ("scontrol", "sinfo"):
        (slow / tool).write_text("#!/bin/sh\nsleep 30\n")
        (slow / tool).chmod(0o755)
    env = {**os.environ, "PATH": os.environ["PATH"] + f":{slow}"}
    res = subprocess.run(["scontrol", "show", "config"], env=env, timeout=10, capture_output=True)
    assert res.returncode == 1
