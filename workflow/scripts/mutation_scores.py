"""Mutation score per module from mutmut's results, as the Markdown table the README quotes.

    mutmut run --max-children 2 && python workflow/scripts/mutation_scores.py

The score is killed (a test failed, or the mutant ran past mutmut's time limit) over checked mutants;
mutants mutmut has not run yet are counted apart, so a stopped run still gives honest partial figures.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

# "    prunestudy.analysis.stats.x_holm__mutmut_3: survived" (methods are spelt xǁClassǁmethod)
LINE = re.compile(r"\s*prunestudy\.([\w.]+?)\.(?:x_|xǁ)\S*__mutmut_\d+: (.+)")
KILLED = ("killed", "timeout")


def tally(results: str) -> dict[str, Counter]:
    """Status counts per module of ``mutmut results --all true`` output."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for line in results.splitlines():
        if m := LINE.match(line):
            counts[m.group(1)][m.group(2).strip()] += 1
    return dict(sorted(counts.items()))


def table(counts: dict[str, Counter]) -> str:
    rows = ["| module | mutants | killed | survived | not checked | killed % of checked |", "|---|---|---|---|---|---|"]
    for module, c in [*counts.items(), ("all", sum(counts.values(), Counter()))]:
        checked = sum(c.values()) - c["not checked"]
        killed = sum(c[k] for k in KILLED)
        score = f"{100 * killed / checked:.0f}%" if checked else "-"
        rows.append(f"| {module} | {sum(c.values())} | {killed} | {checked - killed} | {c['not checked']} | {score} |")
    return "\n".join(rows)


def main() -> int:
    out = subprocess.run(["mutmut", "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    counts = tally(out)
    if not counts:
        print("no mutmut results here: run `mutmut run` first", file=sys.stderr)
        return 1
    print(table(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
