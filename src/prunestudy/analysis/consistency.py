"""Are pruned architectures consistent across runs? Per-group widths of every pruning seed at each target.

Liu et al. (section 5) find that Network Slimming prunes nearly the same widths in every run; Crowley
et al. see the same pattern in Fisher pruning. For each target the table gives, per prunable group, the
mean and sample std of what the runs kept, the coefficient of variation (std / mean), and, for the
target as a whole, the mean Pearson correlation between the runs' width vectors (over every pair of
runs). A structured method keeps channels; magnitude pruning keeps every channel, so for a mask what
counts is the fraction of each layer's weights it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = "channels"
WEIGHT_FRACTION = "fraction of weights"


def kept_vector(record_path: str | Path) -> tuple[list[float], str]:
    """What one pruned run kept per group, and the unit: its spec's widths, or its mask's kept fractions."""
    from prunestudy.arch import spec_from_dict
    from prunestudy.io.artifacts import read_record

    record = read_record(record_path)
    if record["extra"].get("masked"):
        from prunestudy.pruning import masks

        _, mask = masks.load(Path(record_path).with_name("mask.pt"))
        return [float(m.float().mean()) for m in mask.values()], WEIGHT_FRACTION
    return [float(w) for w in spec_from_dict(record["spec"]).widths_vector], CHANNELS


def kept_frame(pruned: pd.DataFrame) -> pd.DataFrame:
    """(seed, target, kept, unit) for every pruned run of a runs table (its ``path`` column)."""
    vectors = [kept_vector(p) for p in pruned["path"]]
    return pd.DataFrame(
        {
            "seed": pruned["seed"].to_numpy(),
            "target": pruned["target"].to_numpy(),
            "kept": [v for v, _ in vectors],
            "unit": [u for _, u in vectors],
        }
    )


def mean_correlation(vectors: Sequence[Sequence[float]]) -> float:
    """Mean Pearson correlation over every pair of vectors; nan with fewer than two or a constant one."""
    v = np.asarray(vectors)
    if len(v) < 2 or any(np.ptp(x) == 0 for x in v):
        return float("nan")
    return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in combinations(v, 2)]))


def consistency_table(kept: pd.DataFrame) -> pd.DataFrame:
    """Per (target, group): mean, std and CV across seeds, with the target's mean between-run correlation."""
    rows = []
    for target, g in kept.groupby("target", sort=True):
        w = np.array([list(v) for v in g["kept"]])
        corr = mean_correlation(w)
        sd = w.std(0, ddof=1) if len(w) > 1 else np.full(w.shape[1], np.nan)
        mean = w.mean(0)
        for group in range(w.shape[1]):
            rows.append(
                {
                    "target": target,
                    "group": group,
                    "unit": g["unit"].iloc[0],
                    "n_seeds": len(w),
                    "mean": mean[group],
                    "std": sd[group],
                    "cv": sd[group] / mean[group] if mean[group] > 0 else float("nan"),
                    "mean_between_run_corr": corr,
                }
            )
    columns = ["target", "group", "unit", "n_seeds", "mean", "std", "cv", "mean_between_run_corr"]
    return pd.DataFrame(rows, columns=columns)
