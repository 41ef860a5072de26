"""Figures of both papers, drawn with seaborn and saved as PNG and PDF.

Every function returns a matplotlib Figure so that tests can inspect axes and artists without files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from prunestudy.analysis.stats import family_curves
from prunestudy.io.paths import target_label
from prunestudy.pruning.arms import BASE, in_order, targeted

AXIS_LABELS = {"params": "parameters", "flops": "FLOPs per image", "latency_ms": "latency (ms per batch)"}
TRAJECTORY_COLOR = "#d62728"  # the blog's red curve
# the colorblind palette without its vermilion, which a reader would take for the red curve
FAMILY_COLORS = [c for i, c in enumerate(sns.color_palette("colorblind")) if i != 3]
DODGE = 0.015  # relative spread along x between the families' summary markers


def save(fig: plt.Figure, stem: str | Path) -> None:
    from prunestudy.io.artifacts import atomic_file

    for ext in ("png", "pdf"):
        with atomic_file(Path(stem).with_suffix(f".{ext}")) as f:
            fig.savefig(f, format=ext, dpi=150, bbox_inches="tight")
    plt.close(fig)


def _curve_key(df: pd.DataFrame) -> pd.Series:
    return df["target"].where(df["target"].notna(), df["member"])


def error_vs(
    runs: pd.DataFrame, x: str = "params", trajectories: Mapping[int, pd.DataFrame] | None = None
) -> plt.Figure:
    """Test error against ``x`` (log axis) for every arm: each network a dot, each member a mean +- std.

    The mean +- std markers of the families are spread by a few percent along ``x`` (a log axis), so that
    arms trained on the same architecture (pruned, Scratch-E, Scratch-B) do not hide one another. With
    ``trajectories`` (seed -> trajectory rows), every prune step's network is drawn too, one thin line
    per seed: the blog's curve of every pruned-and-tuned network, from which the targets were sampled.
    """
    curves = family_curves(runs)
    curves = curves.assign(key=_curve_key(curves), test_error_pct=100 * curves["test_error"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    palette = dict(zip(sorted(curves["family"].unique()), FAMILY_COLORS, strict=False))
    sns.scatterplot(
        data=curves, x=x, y="test_error_pct", hue="family", palette=palette, alpha=0.35, s=18, ax=ax, legend=False
    )
    summary = (
        curves.groupby(["family", "key"])
        .agg(x=(x, "mean"), err=("test_error_pct", "mean"), sd=("test_error_pct", "std"))
        .reset_index()
    )
    families = sorted(summary["family"].unique())
    for family, g in summary.groupby("family"):
        g = g.sort_values("x")
        dodge = 1 + DODGE * (families.index(family) - (len(families) - 1) / 2)
        ax.errorbar(
            g["x"] * dodge,
            g["err"],
            yerr=g["sd"].fillna(0),
            marker="o",
            ms=4,
            capsize=2,
            label=family,
            color=palette[family],
        )
    for i, (_, steps) in enumerate(sorted((trajectories or {}).items())):
        label = "every prune step (one line per seed)" if i == 0 else None
        ax.plot(steps[x], 100 * steps["test_error"], lw=0.6, alpha=0.6, color=TRAJECTORY_COLOR, label=label, zorder=1)
    base = runs[runs["arm"] == BASE]
    if len(base):
        ax.scatter(base[x], 100 * base["test_error"], marker="*", s=120, color="black", label="base", zorder=5)
    ax.set_xscale("log")
    _readable_log_ticks(ax, ax.get_xlim())
    ax.set_xlabel(AXIS_LABELS[x] + " (log scale)")
    ax.set_ylabel("test error (%)")
    ax.set_title(f"Test error against {AXIS_LABELS[x]}")
    ax.legend(fontsize=8)
    return fig


def _readable_log_ticks(ax: plt.Axes, limits: tuple[float, float]) -> None:
    """Within one decade a log axis labels every minor tick as a x 10^b, and the labels run into each
    other; there, a few plainly written ticks instead."""
    if limits[1] / limits[0] < 10:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(5))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def target_arms(runs: pd.DataFrame) -> plt.Figure:
    """Per target: fine-tuned against Scratch-E against Scratch-B (and the long-base, guided and uniform
    networks where the experiment trains them), every seed shown, the mean as a black bar."""
    order = in_order(runs.loc[runs["arm"].map(targeted), "arm"])
    sub = runs[runs["arm"].isin(order)].assign(test_error_pct=lambda d: 100 * d["test_error"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.stripplot(
        data=sub, x="target", y="test_error_pct", hue="arm", hue_order=order, dodge=True, ax=ax, size=5, alpha=0.7
    )
    sns.pointplot(
        data=sub,
        x="target",
        y="test_error_pct",
        hue="arm",
        hue_order=order,
        dodge=0.8 * (len(order) - 1) / len(order),  # where stripplot's dodge=True puts each arm
        linestyle="none",
        markers="_",
        errorbar=None,
        ax=ax,
        legend=False,
        palette="dark:black",
    )
    ax.set_xlabel("target (a fraction of parameters or channels, a sparsity weight or a setting, by method)")
    ax.set_ylabel("test error (%)")
    ax.set_title("Per target: the fine-tuned network against the from-scratch arms")
    return fig


def _kept_label(kept: pd.DataFrame) -> str:
    return f"kept per group ({kept['unit'].iloc[0]})" if len(kept) else "kept per group"


def _whole_groups() -> matplotlib.ticker.Locator:
    """Ticks for a group-index axis: whole numbers, never 0.5 (a locator belongs to one axis, so one each)."""
    return matplotlib.ticker.MaxNLocator(integer=True)


def channel_profile(kept: pd.DataFrame) -> plt.Figure:
    """What each group kept against group index, one line per target (one panel per pruning seed).

    ``kept`` has columns seed, target, kept (a sequence per row) and unit (see :mod:`prunestudy.analysis.consistency`).
    """
    seeds = sorted(kept["seed"].unique())
    fig, axes = plt.subplots(1, len(seeds), figsize=(4.5 * len(seeds), 3.8), squeeze=False, sharey=True)
    colors = sns.color_palette("viridis", kept["target"].nunique())
    for ax, seed in zip(axes[0], seeds, strict=True):
        for color, (target, g) in zip(colors, kept[kept["seed"] == seed].groupby("target"), strict=False):
            widths = g["kept"].iloc[0]
            ax.plot(range(len(widths)), widths, marker="o", ms=3, color=color, label=target_label(target))
        ax.set_xlabel("prunable group (block or layer)")
        ax.xaxis.set_major_locator(_whole_groups())
        ax.set_title(f"pruning seed {seed}")
    axes[0][0].set_ylabel(_kept_label(kept))
    axes[0][-1].legend(title="target", fontsize=7)
    return fig


def trajectory_heatmap(trajectories: dict[int, pd.DataFrame], initial: list[int]) -> plt.Figure:
    """Remaining fraction of every block's channels along each trajectory (rows: blocks, columns: steps)."""
    rows = len(trajectories)
    fig, axes = plt.subplots(
        rows, 1, figsize=(8, 1.0 + max(1.1, 0.3 * len(initial)) * rows), squeeze=False, sharex=True
    )
    for ax, (seed, df) in zip(axes[:, 0], sorted(trajectories.items()), strict=True):
        widths = np.array([[int(v) for v in m.split(";")] for m in df["widths"]]).T
        frac = widths / np.maximum(np.array(initial)[:, None], 1)
        im = ax.imshow(
            frac,
            aspect="auto",
            cmap="magma",
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=(df["step"].iloc[0] - 0.5, df["step"].iloc[-1] + 0.5, len(initial) - 0.5, -0.5),
        )
        ax.set_ylabel(f"seed {seed}")
        ax.yaxis.set_major_locator(_whole_groups())
    axes[-1, 0].set_xlabel("prune step")
    fig.supylabel("prunable group (block or layer)", fontsize=10)
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="fraction of channels left")
    return fig


def consistency(kept: pd.DataFrame) -> plt.Figure:
    """Across pruning seeds, one panel per target: each seed's kept widths (thin) and their mean +- std,
    as :func:`prunestudy.analysis.consistency.consistency_table` gives them."""
    from prunestudy.analysis.consistency import consistency_table

    summary = consistency_table(kept)
    targets = sorted(kept["target"].unique(), key=str)
    cols = min(3, len(targets))  # wrap after three panels, so that each stays readable
    rows = -(-len(targets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.8 * rows), squeeze=False, sharey=True)
    for ax in axes.flat[len(targets) :]:
        ax.set_visible(False)
    seeds = sorted(kept["seed"].unique())
    colors = dict(zip(seeds, sns.color_palette("colorblind", len(seeds)), strict=True))
    for ax, target in zip(axes.flat, targets, strict=False):
        g = kept[kept["target"] == target]
        for seed, row in zip(g["seed"], g["kept"], strict=True):
            ax.plot(range(len(row)), row, lw=0.8, alpha=0.7, color=colors[seed], label=f"seed {seed}")
        s = summary[summary["target"] == target]
        yerr = s["std"].fillna(0)  # one seed: no spread to draw
        ax.errorbar(
            s["group"], s["mean"], yerr=yerr, color="black", marker="o", ms=3, capsize=2, lw=1.5, label="mean ± std"
        )
        ax.set(xlabel="prunable group (block or layer)", title=f"target {target_label(target)}")
        ax.xaxis.set_major_locator(_whole_groups())
    for row in axes:
        row[0].set_ylabel(_kept_label(kept))
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


VERDICT_COLORS = {"supported": "#009E73", "contradicted": "#D55E00", "inconclusive": "#999999"}


def operating_characteristics(oc: pd.DataFrame, alpha: float, title: str = "") -> plt.Figure:
    """How often a claim is supported, contradicted or left inconclusive against its true distance from the
    threshold, one panel per seed count (:func:`prunestudy.analysis.calibration.operating_characteristics`)."""
    counts = sorted(oc["n_seeds"].unique())
    fig, axes = plt.subplots(1, len(counts), figsize=(4.2 * len(counts), 3.6), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], counts, strict=True):
        g = oc[oc["n_seeds"] == n].sort_values("distance_pp")
        for verdict, color in VERDICT_COLORS.items():
            ax.plot(g["distance_pp"], g[verdict], color=color, lw=1.8, marker="o", ms=2.5, label=verdict)
        ax.axhline(alpha, color="black", lw=0.8, ls=":", label=f"alpha = {alpha:g}")
        ax.axvline(0, color="black", lw=0.6, alpha=0.4)
        ax.set(title=f"{n} seeds", xlabel="true effect minus the claim's threshold (pp)", ylim=(-0.02, 1.02))
    axes[0][0].set_ylabel("share of simulated studies")
    axes[0][-1].legend(fontsize=7, loc="center right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
