"""Tables in CSV, Markdown and LaTeX, and published numbers beside reproduced ones."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from prunestudy.artifacts import atomic_write_text


def write_table(df: pd.DataFrame, stem: str | Path, floatfmt: str = ".4g") -> None:
    """``stem``.csv, .md, .tex and .html (the last for the report), each written atomically."""
    stem = Path(stem)
    atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))
    md = df.to_markdown(index=False, floatfmt=floatfmt) if len(df) else "_(no rows)_"
    atomic_write_text(stem.with_suffix(".md"), md + "\n")
    atomic_write_text(stem.with_suffix(".tex"), df.to_latex(index=False, float_format=lambda x: f"{x:{floatfmt}}"))
    html = df.to_html(index=False, float_format=lambda x: f"{x:{floatfmt}}", na_rep="", border=0)
    atomic_write_text(
        stem.with_suffix(".html"), f"<html><head><meta charset='utf-8'>{_STYLE}</head><body>{html}</body></html>\n"
    )


_STYLE = (
    "<style>table{border-collapse:collapse;font:13px sans-serif}td,th{padding:3px 8px;"
    "border-bottom:1px solid #ddd;text-align:right}</style>"
)


def model_name(model: dict) -> str:
    """The name the papers use for the configured architecture, as written in references.yaml."""
    family = model["family"]
    if family == "wrn":
        return f"WRN-{model['depth']}-{model['width']:g}"
    if family == "vgg":
        return str(model.get("name") or "VGG").upper().replace("VGG", "VGG-")
    if family == "densenet":
        return f"DenseNet-{'BC-' if model.get('bc') else ''}{model['depth']}"
    return {"resnet": "ResNet", "preresnet": "PreResNet"}[family] + f"-{model['depth']}"


def references_table(path: str | Path, runs: pd.DataFrame, dataset: str, model: str, method: str) -> pd.DataFrame:
    """Every published figure; where dataset, model, method and target match, the reproduced value beside it.

    Published values are test errors in percent. The reproduced value is the mean final-epoch test
    error (percent) of the matching arm, over seeds; a row without a target (the unpruned network)
    matches every network of its arm.
    """
    refs = yaml.safe_load(Path(path).read_text())["references"]
    rows = []
    for r in refs:
        match = r["dataset"] == dataset and r["model"] == model and r.get("method", method) == method
        mine = runs[(runs["arm"] == r["arm"])] if match else runs.iloc[0:0]
        if match and r.get("budget") is not None:
            mine = mine[mine["budget"].astype(str) == str(r["budget"])]
        rows.append(
            {
                **{k: r.get(k) for k in ("paper", "dataset", "model", "method", "arm", "budget", "setting")},
                "published_error_pct": r["error_pct"],
                "published_std": r.get("std"),
                "verified": r["verified"],
                "source": r["source"],
                "reproduced_error_pct": 100 * mine["test_error"].mean() if len(mine) else None,
                "reproduced_n": len(mine),
            }
        )
    return pd.DataFrame(rows)
