import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunestudy import data as data_mod
from prunestudy.config import validate
from prunestudy.spec import ArchSpec

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture(scope="session")
def digits():
    return data_mod.load("digits", val=0.15, test=0.25)


@pytest.fixture
def cfg():
    """The validated default config."""
    import yaml

    return validate(yaml.safe_load((ROOT / "config/config.yaml").read_text()))


def tiny_spec(mids=(3, 4, 5), widths=(4, 6, 8, 10), in_channels=1, image_size=8) -> ArchSpec:
    return ArchSpec(10, widths, mids, 10, in_channels, image_size)


def cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run the real ``prunestudy`` console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "prunestudy.cli", *args], capture_output=True, text=True, check=check, cwd=ROOT, **kw
    )


def slices(c: dict, *keys: str) -> list[str]:
    out = []
    for k in keys:
        out += [f"--{k.replace('_', '-')}", json.dumps(c[k])]
    return out


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
