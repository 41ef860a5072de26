"""The code stays clean by the project's own standards: ruff, snakefmt and snakemake --lint."""

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize(
    "cmd",
    [
        ["ruff", "check", "src", "tests", "benchmarks", "workflow/scripts"],
        ["ruff", "format", "--check", "src", "tests", "benchmarks", "workflow/scripts"],
        ["snakefmt", "--check", "Snakefile", "workflow"],
    ],
    ids=["ruff", "ruff-format", "snakefmt"],
)
def test_linters_pass(cmd):
    exe = shutil.which(cmd[0]) or pytest.fail(f"{cmd[0]} is not installed (pip install -e '.[test]')")
    res = subprocess.run([exe, *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_snakemake_lint_is_clean():
    res = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0 and "Congratulations" in res.stdout + res.stderr, res.stdout + res.stderr
