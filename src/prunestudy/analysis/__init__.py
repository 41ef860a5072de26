"""Analysis: collecting runs, statistics, claims and their verdicts, tables and figures."""
