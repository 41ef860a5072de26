"""Show that two runs of a study agree on every number: runs.csv and each trajectory.csv, column by column.

    python workflow/scripts/compare_results.py OLD_STUDY_DIR NEW_STUDY_DIR [--experiment NAME]

OLD may be a round-1 result folder (one experiment at the study's top, budget-named folders): its
trajectories are found by glob, its columns ``block``/``mids`` are read as ``group``/``widths``.
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
RENAMED = {"block": "group", "mids": "widths"}


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--experiment", help="the experiment folder inside NEW (default: NEW itself)")
    args = p.parse_args()
    new = args.new / args.experiment if args.experiment else args.new
    diffs = compare(args.old / "runs.csv", new / "runs.csv", "runs.csv", ["arm", "target", "member", "seed"])
    old_traj = sorted(args.old.glob("prune/seed*/trajectory.csv"))
    if not old_traj:
        diffs.append("no trajectory.csv in OLD")
    for t in old_traj:
        diffs += compare(t, new / t.relative_to(args.old), str(t.relative_to(args.old)))
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
