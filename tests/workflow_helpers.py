"""Run the real workflow in a scratch folder and read what Snakemake plans to do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT


def write_config(path: Path, base: str = "config/config.yaml", **changes) -> Path:
    """A copy of ``base`` with nested ``changes`` applied: 'train.lr' or 'experiments.0.prune.lr' style keys."""
    cfg = yaml.safe_load((ROOT / base).read_text())
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


def snakemake_cmd(workdir: Path, config: Path, *args: str, cores: int = 2) -> list[str]:
    """The command line of the real workflow run in ``workdir`` with ``config``."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--cores",
        str(cores),
        *args,
    ]


def snakemake(
    workdir: Path, config: Path, *args: str, check: bool = True, timeout: float = 1200, **kw
) -> subprocess.CompletedProcess:
    res = subprocess.run(snakemake_cmd(workdir, config, *args), capture_output=True, text=True, timeout=timeout, **kw)
    if check and res.returncode:
        raise AssertionError(f"snakemake failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


def planned_jobs(workdir: Path, config: Path, **kw) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run would execute, 'all' excluded."""
    res = snakemake(workdir, config, "-n", **kw)
    out = res.stdout + res.stderr
    jobs = []
    for block in re.split(r"\n(?=rule \w+:|localrule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block)
        if not m or m.group(1) == "all":
            continue
        wc = re.search(r"wildcards: (.*)", block)
        pairs = dict(p.split("=", 1) for p in wc.group(1).split(", ")) if wc else {}
        jobs.append((m.group(1), pairs))
    return jobs
