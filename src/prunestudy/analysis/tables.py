"""Tables in CSV, Markdown and LaTeX, and published numbers beside reproduced ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prunestudy.io.artifacts import atomic_write_text
from prunestudy.io.paths import target_label
from prunestudy.pruning.arms import BASE, in_order, targeted


def write_table(
    df: pd.DataFrame, stem: str | Path, floatfmt: str = ".4g", tex: pd.DataFrame | None = None, caption: str = ""
) -> None:
    """``stem``.csv, .md, .tex and .html (the last for the report), each written atomically.

    The LaTeX table uses booktabs rules; ``tex`` replaces ``df`` there when a paper wants fewer,
    formatted columns, and a ``caption`` wraps it in a table environment.
    """
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))
    md = df.to_markdown(index=False, floatfmt=floatfmt) if len(df) else "_(no rows)_"
    atomic_write_text(stem.with_suffix(".md"), md + "\n")
    latex = (tex if tex is not None else df).to_latex(
        index=False, float_format=lambda x: f"{x:{floatfmt}}", caption=caption or None, na_rep="--"
    )
    atomic_write_text(stem.with_suffix(".tex"), latex.replace("±", r"$\pm$"))
    write_html(df, stem.with_suffix(".html"), floatfmt)


def write_html(df: pd.DataFrame, path: str | Path, floatfmt: str = ".4g") -> None:
    """A table as a standalone HTML page, the form the report shows (it cannot show a CSV inline)."""
    html = df.to_html(index=False, float_format=lambda x: f"{x:{floatfmt}}", na_rep="", border=0)
    atomic_write_text(path, f"<html><head><meta charset='utf-8'>{_STYLE}</head><body>{html}</body></html>\n")


_STYLE = (
    "<style>table{border-collapse:collapse;font:13px sans-serif}td,th{padding:3px 8px;"
    "border-bottom:1px solid #ddd;text-align:right}</style>"
)


def model_name(model: dict) -> str:
    """The name the papers use for the configured architecture, as written in references.yaml."""
    from prunestudy.arch import FAMILIES

    return FAMILIES[model["family"]].spec.paper_name(model)


def references_table(path: str | Path, runs: pd.DataFrame, dataset: str, model: str, method: str) -> pd.DataFrame:
    """Every published figure; where dataset, model, method and target match, the reproduced value beside it.

    Published values are test errors in percent. The reproduced value is the mean final-epoch test
    error (percent) of the matching arm, over seeds; a row without a target (the unpruned network)
    matches every network of its arm. The reference scripts report the best test epoch instead, which this
    project never measures (the test set is read once); ``reproduced_best_epoch_pct`` estimates it as the
    final-epoch test error less how far each run's validation error fell below its final value at its best
    epoch (``docs/deviations.md``).
    """
    from prunestudy.io.config import load_references

    refs = load_references(path)
    rows = []
    for r in refs:
        match = r["dataset"] == dataset and r["model"] == model and r.get("method", method) == method
        mine = runs[(runs["arm"] == r["arm"])] if match else runs.iloc[0:0]
        if match and r.get("target") is not None:
            mine = mine[mine["target"].map(target_label) == target_label(r["target"])]
        rows.append(
            {
                **{k: r.get(k) for k in ("paper", "dataset", "model", "method", "arm", "target", "setting")},
                "published_error_pct": r["error_pct"],
                "published_std": r.get("std"),
                "verified": r["verified"],
                "source": r["source"],
                "reproduced_error_pct": 100 * mine["test_error"].mean() if len(mine) else None,
                "reproduced_best_epoch_pct": _best_epoch_pct(mine),
                "reproduced_n": len(mine),
            }
        )
    return pd.DataFrame(rows)


def _best_epoch_pct(runs: pd.DataFrame) -> float | None:
    """The mean final-epoch test error (percent) less the mean drop from final to best validation error: what
    a best-epoch pick would roughly have reported. None without runs or without per-epoch validation."""
    gap = runs["val_error"] - runs["best_val_error"]
    if not len(runs) or gap.isna().any():
        return None
    return 100 * float((runs["test_error"] - gap).mean())


def mean_std(values: pd.Series) -> str:
    """Test errors (fractions) as "mean ± std" in percent; one value has no std."""
    pct = 100 * values.to_numpy(dtype=float)
    return f"{pct.mean():.2f} ± {pct.std(ddof=1):.2f}" if len(pct) > 1 else f"{pct.mean():.2f}"


def errors_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per target, every arm's final-epoch test error as mean ± std in percent, as the papers' tables give it.

    Returns the table and its caption, which states the number of seeds behind each cell.
    """
    base = runs[runs["arm"] == BASE]
    sub = runs[runs["arm"].map(targeted)]
    arms = in_order(sub["arm"])
    rows = []
    for target, g in sub.groupby("target", sort=True):
        pruned = g[g["arm"] == arms[0]]
        row = {"target": target, "params": round(pruned["params"].mean()), "unpruned": mean_std(base["test_error"])}
        row.update({a: mean_std(g.loc[g["arm"] == a, "test_error"]) for a in arms if (g["arm"] == a).any()})
        rows.append(row)
    counts = [*sub.groupby(["arm", "target"]).size(), *([len(base)] if len(base) else [])] or [0]
    seeds = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)} to {max(counts)}"
    caption = f"Test error (\\%) at the final epoch, mean ± std over {seeds} seeds; params of the pruned network."
    return pd.DataFrame(rows, columns=["target", "params", "unpruned", *arms]), caption


def claims_latex(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims table as a paper prints it: the threshold, the effect with its simultaneous interval, the
    seeds, the corrected p-value of the deciding test and the verdict."""
    return pd.DataFrame(
        {
            "Experiment": claims["experiment"],
            "Claim": claims["claim"],
            "Threshold (pp)": [f"{t:+.2f}" for t in claims["threshold_pp"]],
            "Effect (pp) [simultaneous CI]": [
                f"{r.effect_pp:+.2f} [{r.ci_low_pp:+.2f}, {r.ci_high_pp:+.2f}]" for r in claims.itertuples()
            ],
            "Seeds": claims["n_seeds"],
            "$p_\\mathrm{Holm}$": [f"{p:.3g}" for p in claims["p_holm"]],
            "Verdict": claims["verdict"],
        }
    )
