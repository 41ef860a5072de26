"""Show that two runs of a study agree on every number: runs.csv and each trajectory.csv, column by column.

    python workflow/scripts/compare_results.py OLD_STUDY_DIR NEW_STUDY_DIR [--experiment NAME]

Every experiment of the new study is compared (or the one named). OLD may be a round-1 result folder
(one experiment at the study's top): its columns ``block``/``mids``/``budget`` are read as
``group``/``widths``/``target``.
Ignored: timing columns (they measure the machine), paths, and provenance that names the code or
the config's spelling (git commit, config hash). Exit status 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

TIMING = {"elapsed_s", "wall_time_s", "throughput_img_s", "latency_ms"}
PATHS = {"path", "checkpoint"}
PROVENANCE = {"git_commit", "config_hash", "experiment"}
RENAMED = {"block": "group", "mids": "widths", "budget": "target"}


def _frame(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path).rename(columns=RENAMED)
    return df.drop(columns=[c for c in df.columns if c in TIMING | PATHS | PROVENANCE])


def compare(old: Path, new: Path, what: str, keys: list[str] | None = None) -> list[str]:
    a, b = _frame(old), _frame(new)
    if keys:
        a = a.sort_values(keys, na_position="first").reset_index(drop=True)
        b = b.sort_values(keys, na_position="first").reset_index(drop=True)
    if list(a.columns) != list(b.columns):
        return [f"{what}: columns differ: {list(a.columns)} vs {list(b.columns)}"]
    if len(a) != len(b):
        return [f"{what}: {len(a)} rows vs {len(b)}"]
    out = []
    for col in a.columns:
        same = (a[col] == b[col]) | (a[col].isna() & b[col].isna())
        if not same.all():
            out.append(f"{what}: column {col} differs in {int((~same).sum())} of {len(a)} rows")
    print(f"{what}: {len(a)} rows x {len(a.columns)} columns identical" if not out else "\n".join(out))
    return out


def experiments(study: Path, name: str | None) -> list[str]:
    """The experiment folders to compare: the one named, else every folder of ``study`` with a runs table
    (an old single-experiment layout has its runs table at the top: compared as it is, named '.')."""
    if name:
        return [name]
    found = sorted(p.parent.name for p in study.glob("*/runs.csv"))
    return found or ["."]


def compare_experiment(old: Path, new: Path) -> list[str]:
    """The runs table and every trajectory of one experiment (one-shot experiments have none)."""
    diffs = compare(old / "runs.csv", new / "runs.csv", f"{new.name}/runs.csv", ["arm", "target", "member", "seed"])
    for t in sorted(old.glob("prune/seed*/trajectory.csv")):
        diffs += compare(t, new / t.relative_to(old), f"{new.name}/{t.relative_to(old)}")
    return diffs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", type=Path, help="the old study folder (results/<study>), or an old experiment folder")
    p.add_argument("new", type=Path, help="the new study folder")
    p.add_argument("--experiment", help="compare this experiment only (default: every experiment of NEW)")
    args = p.parse_args()
    diffs = []
    for name in experiments(args.new, args.experiment):
        old = args.old / name if (args.old / name / "runs.csv").exists() else args.old
        diffs += compare_experiment(old, args.new / name)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
