"""The fixed cost of a workflow job: a fresh Python that parses its command and imports what the job needs.

Every job of a run starts its own interpreter, so what a job imports before it reads its first file is paid
about 150 times by the default run. This starts the real CLI of one or more source trees with each
command's arguments pointing at a missing file, so that the job stops at its first read, after every
import it makes, and reports the wall time (interleaved repeats: median and spread) and whether torch
was imported on the way.

    python benchmarks/bench_startup.py --tree before=/path/to/old/src --tree after=src --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

# each command as the workflow calls it, pointed at a file that does not exist (it fails on its first read)
COMMANDS = {
    "collect": ["collect", "/nonexistent/metrics.json", "--latency", "/nonexistent/latency.csv", "--expect",
                "[{}]", "--experiment", "e", "--out", "/nonexistent/runs.csv"],
    "compare": ["compare", "--runs", "/nonexistent/runs.csv", "--method", "l1", "--analysis", "{}", "--data",
                "{}", "--model", "{}", "--out-dir", "/nonexistent"],
}  # fmt: skip

PROBE = """
import sys
sys.argv = ["prunestudy", *sys.argv[1:]]
from prunestudy.cli import main
try:
    main()
except (SystemExit, Exception):
    pass
print("torch" in sys.modules)
"""


def once(src: str, args: list[str]) -> tuple[float, bool]:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env={"PYTHONPATH": src, "PATH": ""}
    )
    return time.perf_counter() - t0, out.stdout.strip().endswith("True")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", action="append", required=True, help="NAME=SRC: a source tree's src/ folder")
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    if args.repeats < 2:
        ap.error("--repeats: at least 2, for a spread")
    trees = dict(t.split("=", 1) for t in args.tree)
    times: dict[tuple[str, str], list[float]] = {}
    torch_seen: dict[tuple[str, str], bool] = {}
    for _ in range(args.repeats):  # interleaved: every tree and command once per round
        for name, src in trees.items():
            for cmd, cmd_args in COMMANDS.items():
                t, imported = once(src, cmd_args)
                times.setdefault((name, cmd), []).append(t)
                torch_seen[name, cmd] = imported
    print("| tree | command | median s | IQR s | imports torch |\n|---|---|---|---|---|")
    for (name, cmd), ts in times.items():
        q = statistics.quantiles(ts, n=4)
        print(f"| {name} | {cmd} | {statistics.median(ts):.2f} | {q[2] - q[0]:.2f} | {torch_seen[name, cmd]} |")


if __name__ == "__main__":
    main()
