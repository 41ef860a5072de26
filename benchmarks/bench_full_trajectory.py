"""Prune WRN-40-2 on digits through all 1344 channels and report the wall time of the whole trajectory.

Uses the real CLI stages: a short base training, then one `prunestudy prune-chunk` per chunk, exactly
as the workflow chains them.

    python benchmarks/bench_full_trajectory.py [--every 10] [--batch 64] [--chunk 336] [--out /tmp/full]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from prunestudy.io.config import validate


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--chunk", type=int, default=336)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="/tmp/prunestudy-full-trajectory")
    args = p.parse_args()
    c = validate(
        {
            "data": {"name": "digits", "val_size": 0.15, "test_size": 0.25},
            "train": {"epochs": 5, "batch_size": 64, "lr": 0.1, "milestones": [3]},
            "experiments": [
                {
                    "name": "bench",
                    "model": {"family": "wrn", "depth": 40, "width": 2},
                    "prune": {
                        "every": args.every,
                        "max_prunes": 1344,
                        "chunk": args.chunk,
                        "lr": 2e-3,
                        "batch_size": args.batch,
                    },
                }
            ],
            "device": "cpu",
        }
    )
    c = {**c, **{k: c["experiments"][0][k] for k in ("model", "prune")}}
    out = Path(args.out)

    def run(*a: str) -> None:
        subprocess.run([sys.executable, "-m", "prunestudy.cli", *a, "--threads", str(args.threads)], check=True)

    def j(k: str) -> str:
        return json.dumps(c[k])

    run(
        "train",
        "--experiment",
        "bench",
        "--arm",
        "base",
        "--seed",
        "1",
        "--data",
        j("data"),
        "--model",
        j("model"),
        "--recipe",
        j("train"),
        "--latency",
        j("latency"),
        "--device",
        "cpu",
        "--out",
        str(out / "base"),
    )
    t0 = time.perf_counter()
    prev = out / "base" / "model.pt"
    n_chunks = -(-1344 // args.chunk)
    for k in range(n_chunks):
        state, rows = out / f"chunk{k:03d}.state.pt", out / f"chunk{k:03d}.csv"
        run(
            "prune-chunk",
            "--experiment",
            "bench",
            "--seed",
            "1",
            "--chunk",
            str(k),
            "--data",
            j("data"),
            "--model",
            j("model"),
            "--prune",
            j("prune"),
            "--device",
            "cpu",
            "--input",
            str(prev),
            "--out-state",
            str(state),
            "--out-rows",
            str(rows),
        )
        prev = state
    wall = time.perf_counter() - t0
    traj = pd.concat(pd.read_csv(out / f"chunk{k:03d}.csv") for k in range(n_chunks))
    print(
        f"\n== WRN-40-2 on digits, all {len(traj)} channels pruned, {args.every} fine-tuning batches of "
        f"{args.batch} per prune, {args.threads} threads"
    )
    print(f"  trajectory wall time: {wall / 60:.1f} min (target < 30 min); final params {traj['params'].iloc[-1]}")
    for frac in (0.5, 0.25, 0.1):
        row = traj[traj["params_fraction"] <= frac].iloc[0]
        print(f"  first step at <= {frac:.0%} params: step {row['step']}, test error {row['test_error']:.4f}")


if __name__ == "__main__":
    main()
