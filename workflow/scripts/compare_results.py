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
    """Every difference between two tables, printed: columns or rows one side lacks (a new arm or column),
    then every shared column of the shared rows, value by value."""
    a, b = _frame(old), _frame(new)
    out = [f"{what}: columns only in {side}: {cols}" for side, cols in _only(a.columns, b.columns) if cols]
    shared = [c for c in a.columns if c in b.columns]
    a, b = a[shared], b[shared]
    keys = [k for k in keys or [] if k in shared]
    if keys:  # rows matched by their keys, written out (an empty key is one value, not NaN != NaN)
        a, b = (d.assign(**{k: d[k].astype(str) for k in keys}).set_index(keys).sort_index() for d in (a, b))
        out += [f"{what}: {len(rows)} rows only in {side}" for side, rows in _only(a.index, b.index) if len(rows)]
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
    elif len(a) != len(b):
        return [*out, f"{what}: {len(a)} rows vs {len(b)}"]
    for col in a.columns:
        same = (a[col].to_numpy() == b[col].to_numpy()) | (a[col].isna().to_numpy() & b[col].isna().to_numpy())
        if not same.all():
            out.append(f"{what}: column {col} differs in {int((~same).sum())} of {len(a)} rows")
    print("\n".join(out) if out else f"{what}: {len(a)} rows x {len(a.columns)} columns identical")
    return out


def _only(a, b) -> list[tuple[str, list]]:
    return [("OLD", [x for x in a if x not in set(b)]), ("NEW", [x for x in b if x not in set(a)])]


def experiments(study: Path, name: str | None) -> list[str]:
    """The experiment folders to compare: the one named, else every folder of ``study`` with a runs table
    (an old single-experiment layout has its runs table at the top: compared as it is, named '.')."""
    if name:
        return [name]
    found = sorted(p.parent.name for p in study.glob("*/runs.csv"))
    return found or ["."]


def compare_experiment(old: Path, new: Path) -> list[str]:
    """The runs table and every trajectory of one experiment (one-shot experiments have none)."""
    keys = ["arm", "target", "member", "lr", "seed"]
    diffs = compare(old / "runs.csv", new / "runs.csv", f"{new.name}/runs.csv", keys)
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
