"""Collect every metrics.json into one tidy runs table: one row per trained network."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from prunestudy.arms import TARGETED
from prunestudy.artifacts import read_json

# copied verbatim from each metrics.json
COPIED = (
    "spec_id",
    "params",
    "flops",
    "macs",
    "latency_ms",
    "val_error",
    "test_error",
    "final_train_loss",
    "epochs",
    "wall_time_s",
    "throughput_img_s",
    "device",
    "config_hash",
)
COLUMNS = ("experiment", "arm", "seed", "budget", "member", *COPIED, "git_commit", "path")


def _target(label: str) -> float | str:
    try:
        return float(label)
    except ValueError:
        return label


def run_row(path: str | Path, experiment: str) -> dict:
    m = read_json(path)
    extra = m.get("extra", {})
    scratch = m["arm"] in TARGETED
    member_of = extra.get("member_of")
    return {
        "experiment": experiment,
        "arm": m["arm"],
        "seed": m["seed"],
        "budget": _target(member_of) if scratch and member_of is not None else None,
        "member": float(extra["member"]) if "member" in extra else None,
        **{k: m[k] for k in COPIED},
        "git_commit": m["versions"].get("git_commit", ""),
        "path": str(path),
    }


def runs_table(paths: Iterable[str | Path], experiment: str) -> pd.DataFrame:
    """One row per network of ``experiment``: its own and the shared large networks it prunes."""
    df = pd.DataFrame([run_row(p, experiment) for p in paths], columns=list(COLUMNS))
    return df.sort_values(["arm", "budget", "member", "seed"], na_position="first").reset_index(drop=True)
