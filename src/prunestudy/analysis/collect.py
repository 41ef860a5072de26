"""Collect every metrics.json into one tidy runs table: one row per trained network."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from prunestudy.io.paths import at_lr, split_lr
from prunestudy.io.records import check_record
from prunestudy.pruning.arms import TARGETED

# copied verbatim from each metrics.json
COPIED = (
    "spec_id",
    "params",
    "flops",
    "macs",
    "val_error",
    "test_error",
    "final_train_loss",
    "epochs",
    "wall_time_s",
    "throughput_img_s",
    "device",
    "config_hash",
)
COLUMNS = (
    *("experiment", "arm", "seed", "target", "member", "lr"),
    *COPIED,
    *("best_val_error", "latency_ms", "git_commit", "path"),
)


def _target(label: str) -> float | str:
    try:
        return float(label)
    except ValueError:
        return label


def run_row(m: dict, path: str | Path, experiment: str) -> dict:
    """The runs-table row of the metrics record ``m`` read from ``path``: a lottery run's slot is its target at
    its learning rate (:func:`prunestudy.io.paths.at_lr`), its ``lr`` column that rate."""
    extra = m.get("extra", {})
    slot = m["identity"]["slot"]
    target, lr = split_lr(slot) if m["arm"] in TARGETED and slot is not None else (None, None)
    return {
        "experiment": experiment,
        "arm": m["arm"],
        "seed": m["seed"],
        "target": _target(target) if target is not None else None,
        "member": float(extra["member"]) if "member" in extra else None,
        "lr": lr,
        **{k: m[k] for k in COPIED},
        "best_val_error": min((h["val_error"] for h in extra.get("history", ())), default=None),
        "git_commit": m["versions"].get("git_commit", ""),
        "path": str(path),
    }


def runs_table(
    paths: Iterable[str | Path], experiment: str, latency: pd.DataFrame, expected: list[dict]
) -> pd.DataFrame:
    """One row per network of ``experiment``: its own and the shared large networks it prunes, with the
    latency measured for its spec (``latency``: spec_id -> latency_ms, see :mod:`prunestudy.training.latency`).

    ``expected`` is the identity of each file, from the config: a file that is not the run its slot
    expects (copied over another seed's, say) stops the table, so no run is counted twice or missed."""
    keys = [tuple(sorted(e.items())) for e in expected]
    if len(set(keys)) != len(keys):
        raise ValueError("the expected runs repeat one; each run has one slot")
    rows = [run_row(check_record(p, ident), p, experiment) for p, ident in zip(paths, expected, strict=True)]
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "latency_ms"])
    missing = sorted(set(df["spec_id"]) - set(latency["spec_id"]))
    if missing:
        raise ValueError(f"no latency was measured for {missing}; rerun the experiment's latency job")
    df = df.merge(latency[["spec_id", "latency_ms"]], on="spec_id", how="left")[list(COLUMNS)]
    return df.sort_values(["arm", "lr", "target", "member", "seed"], na_position="first").reset_index(drop=True)


def compared(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs as the analysis compares them: a lottery run's arm at its learning rate (``winning-ticket@lr0.1``),
    since each learning rate is its own comparison; every other row as it is."""
    out = runs.copy()
    lottery = out["lr"].notna()
    named = zip(out.loc[lottery, "arm"], out.loc[lottery, "lr"], strict=True)
    out.loc[lottery, "arm"] = [at_lr(arm, lr) for arm, lr in named]
    return out
