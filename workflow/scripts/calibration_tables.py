"""The calibration tables of docs/statistics.md, for any config: the study's verdict error rates at a
between-seed SD of 1 pp, simulated by the functions the workflow's calibrate job uses (seeded).

    python workflow/scripts/calibration_tables.py config/config.yaml config/liu.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

from prunestudy.analysis import calibration as cal
from prunestudy.io.catalog import count_test_images
from prunestudy.io.config import validate

ALPHA, MARGIN, SD = 0.05, 0.005, 0.01


def table(path: str) -> str:
    c = validate(yaml.safe_load(Path(path).read_text()))
    d = cal.Design.from_config(c["experiments"], MARGIN, count_test_images(c["data"]))
    paired, unpaired = 0, int(np.flatnonzero(~d.paired)[0])
    lines = [
        f"**`{path}`** ({d.claims} claims, {int(d.paired.sum())} paired, N_test = {d.n_test:,})",
        "",
        "| seeds | family-wise rate | supported, 1 pp short | contradicted, 0.25 pp inside "
        "| right, 3 pp beyond (paired / unpaired) | right, 3 pp short (paired / unpaired) |",
        "|---|---|---|---|---|---|",
    ]
    for n in cal.SEEDS:
        fwer = cal.family_wise_error(d, SD, n, 20000, seed=20 + n, alpha=ALPHA)
        short = [cal.focal(d, i, -0.01, SD, n, 10000, seed=n, alpha=ALPHA)["supported"] for i in (paired, unpaired)]
        inside = cal.focal(d, paired, MARGIN / 2, SD, n, 10000, seed=10 + n, alpha=ALPHA)["contradicted"]
        both = (paired, unpaired)
        beyond = [cal.focal(d, i, 0.03, SD, n, 4000, seed=30 + n, alpha=ALPHA)["supported"] for i in both]
        below = [cal.focal(d, i, -0.03, SD, n, 4000, seed=40 + n, alpha=ALPHA)["contradicted"] for i in both]
        lines.append(
            f"| {n} | {fwer:.3f} | {short[0]:.4f} / {short[1]:.4f} | {inside:.4f} | {beyond[0]:.2f} / {beyond[1]:.2f} "
            f"| {below[0]:.2f} / {below[1]:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(table(p) for p in sys.argv[1:]))
