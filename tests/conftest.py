import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunestudy.arch import WRNSpec
from prunestudy.io.config import validate
from prunestudy.training import data as data_mod

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture(scope="session")
def digits():
    return data_mod.load("digits", val=0.15, test=0.25)


@pytest.fixture
def cfg():
    """The validated default config, with its first experiment's slices at the top for CLI calls."""
    import yaml

    c = validate(yaml.safe_load((ROOT / "config/config.yaml").read_text()))
    return {**c, "model": c["experiments"][0]["model"], "prune": c["experiments"][0]["prune"]}


def augment_once(x: torch.Tensor, aug, gen: torch.Generator) -> torch.Tensor:
    """One batch of ``x`` augmented as the loop does it: draws from ``gen``, then one gather."""
    (batch,) = data_mod.draw_batches([torch.arange(len(x))], aug, gen)
    return x if batch.shift is None else data_mod.apply_augment(x, aug, batch.shift, batch.flip)


def tiny_spec(mids=(3, 4, 5), widths=(4, 6, 8, 10), in_channels=1, image_size=8) -> WRNSpec:
    return WRNSpec(10, widths, mids, 10, in_channels, image_size)


def captured_scores(method, model, spec, batches) -> dict:
    """What an iterative method's capture scores after one cross-entropy backward pass per (x, y) batch."""
    import torch.nn.functional as F

    capture = method.watch(model, spec)
    for x, y in batches:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
        capture.step()
    capture.close()
    return capture.scores()


def cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run the real ``prunestudy`` console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "prunestudy.cli", *args], capture_output=True, text=True, check=check, cwd=ROOT, **kw
    )


def base_train_args(c: dict, out, epochs: int, milestones: list[int]) -> list[str]:
    """The CLI arguments that train the large network of ``c``'s model, seed 1, on the CPU."""
    recipe = {**c["train"], "epochs": epochs, "milestones": milestones}
    args = ["train", "--arm", "base", "--seed", "1", "--device", "cpu", "--out", str(out)]
    return [*args, *slices(c, "data", "model"), "--recipe", json.dumps(recipe)]


def slices(c: dict, *keys: str) -> list[str]:
    """The CLI arguments of a job of experiment ``test``: each named config slice as JSON."""
    out = ["--experiment", "test"]
    for k in keys:
        out += [f"--{k.replace('_', '-')}", json.dumps(c[k])]
    return out


SCONTROL_STUB = """#!/bin/sh
# The SLURM executor plugin runs `scontrol show config` (10 s timeout) whenever Snakemake starts. Where
# SLURM's clients are installed but no controller runs (after the SLURM test), answer at once instead.
pgrep -x slurmctld >/dev/null || exit 1
PATH=$(printf %s "$PATH" | sed "s#$(dirname "$0"):##") exec scontrol "$@"
"""


@pytest.fixture(scope="session", autouse=True)
def _fast_slurm_probe(tmp_path_factory):
    stub = tmp_path_factory.mktemp("bin")
    (stub / "scontrol").write_text(SCONTROL_STUB)
    (stub / "scontrol").chmod(0o755)
    os.environ["PATH"] = f"{stub}:{os.environ['PATH']}"
    yield
    os.environ["PATH"] = os.environ["PATH"].replace(f"{stub}:", "", 1)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
