from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from prunestudy.analysis import figures


@pytest.fixture
def runs():
    rows = [
        {
            "arm": "base",
            "seed": s,
            "target": None,
            "member": None,
            "params": 1e5,
            "flops": 1e7,
            "latency_ms": 2.0,
            "test_error": 0.02,
        }
        for s in (1, 2)
    ]
    for s in (1, 2):
        for b in (0.2, 0.5):
            for arm, e in (("pruned", 0.05), ("scratch-E", 0.04), ("scratch-B", 0.035)):
                rows.append(
                    {
                        "arm": arm,
                        "seed": s,
                        "target": b,
                        "member": None,
                        "params": b * 1e5 + s,
                        "flops": b * 1e7,
                        "latency_ms": 1 + b,
                        "test_error": e + 0.01 * s,
                    }
                )
        for arm in ("width", "bottleneck", "scaled"):
            for m in (0.25, 0.5, 0.75):
                rows.append(
                    {
                        "arm": arm,
                        "seed": s,
                        "target": None,
                        "member": m,
                        "params": m * 1e5,
                        "flops": m * 1e7,
                        "latency_ms": 1 + m,
                        "test_error": 0.05 - 0.02 * m,
                    }
                )
    return pd.DataFrame(rows)


def _non_empty(ax):
    return len(ax.lines) + len(ax.collections) + len(ax.images) > 0


@pytest.mark.parametrize("x", ["params", "flops", "latency_ms"])
def test_error_vs(runs, x):
    fig = figures.error_vs(runs, x)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "test error" in ax.get_ylabel() and _non_empty(ax)
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"base", "width", "bottleneck", "scaled", "pruned (tuned)", "pruned (scratch-E)"} <= labels
    # the arms on one architecture sit side by side, each within a few percent of its true x
    marker_x = {
        c.get_label(): np.asarray(c.lines[0].get_xdata(), float)
        for c in ax.containers
        if c.get_label().startswith("pruned")
    }
    true_x = runs[runs["arm"] == "pruned"].groupby("target")[x].mean().sort_index().to_numpy()
    for xs in marker_x.values():
        assert np.allclose(np.sort(xs), true_x, rtol=0.05)
    assert len({tuple(np.round(xs, 6)) for xs in marker_x.values()}) == len(marker_x) >= 2
    plt.close(fig)


def test_target_arms(runs):
    fig = figures.target_arms(runs)
    ax = fig.axes[0]
    assert "target" in ax.get_xlabel() and _non_empty(ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.2", "0.5"]
    plt.close(fig)


def _kept():
    return pd.DataFrame(
        {
            "seed": [1, 1, 2, 2],
            "target": [0.2, 0.5, 0.2, 0.5],
            "kept": [[1, 2, 3], [4, 5, 6], [2, 2, 2], [4, 4, 7]],
            "unit": "channels",
        }
    )


def test_channel_profile_and_consistency():
    fig = figures.channel_profile(_kept())
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    assert fig.axes[0].get_xlabel() == "prunable group (block or layer)"
    assert fig.axes[0].get_ylabel() == "kept per group (channels)"
    plt.close(fig)
    fig = figures.consistency(_kept())
    assert [ax.get_title() for ax in fig.axes] == ["target 0.2", "target 0.5"]
    ax = fig.axes[0]  # target 0.2: seed 1 kept [1, 2, 3], seed 2 [2, 2, 2]
    assert [list(line.get_ydata()) for line in ax.lines[:2]] == [[1, 2, 3], [2, 2, 2]]
    mean_bar = ax.containers[0]
    assert list(mean_bar.lines[0].get_ydata()) == pytest.approx([1.5, 2, 2.5])
    top = mean_bar.lines[1][1].get_ydata()  # the upper error-bar caps: mean + sample std
    assert list(top) == pytest.approx([1.5 + np.std([1, 2], ddof=1), 2, 2.5 + np.std([3, 2], ddof=1)])
    for ax in fig.axes:
        fig.canvas.draw()
        assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_xticks()
    plt.close(fig)


def test_error_vs_params_draws_every_prune_step_of_each_trajectory(runs):
    steps = {
        s: pd.DataFrame({"params": [1e5, 8e4, 5e4], "flops": [1e7, 8e6, 5e6], "test_error": [0.02, 0.03, 0.05 + s]})
        for s in (1, 2)
    }
    fig = figures.error_vs(runs, "params", steps)
    red = [line for line in fig.axes[0].lines if line.get_color() == figures.TRAJECTORY_COLOR]
    assert [list(line.get_xdata()) for line in red] == [[1e5, 8e4, 5e4]] * 2
    assert np.allclose([line.get_ydata() for line in red], [[2, 3, 105], [2, 3, 205]])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels.count("every prune step (one line per seed)") == 1
    plt.close(fig)


def test_trajectory_heatmap(tmp_path):
    traj = pd.DataFrame({"step": [1, 2, 3], "widths": ["3;4", "2;4", "2;3"]})
    fig = figures.trajectory_heatmap({1: traj}, [3, 4])
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (2, 3) and img[0, 1] == pytest.approx(2 / 3)
    ticks = fig.axes[0].get_yticks()
    assert all(float(t).is_integer() for t in ticks)  # no group 0.5
    figures.save(fig, tmp_path / "heat")
    assert (tmp_path / "heat.png").stat().st_size > 1000 and (tmp_path / "heat.pdf").exists()


def test_tick_labels_of_a_narrow_log_axis_do_not_overlap(runs):
    narrow = runs.assign(latency_ms=1.15 + 0.35 * runs["params"].rank(pct=True))  # 1.15 to 1.5 ms
    fig = figures.error_vs(narrow, "latency_ms")
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [
        t.get_window_extent(renderer) for t in ax.get_xticklabels(which="both") if t.get_text() and t.get_visible()
    ]
    boxes = sorted(boxes, key=lambda b: b.x0)
    assert len(boxes) >= 3 and all(a.x1 <= b.x0 for a, b in pairwise(boxes))
    plt.close(fig)


def test_operating_characteristics_draw_the_simulated_rates_per_seed_count():
    oc = pd.DataFrame(
        [
            (n, d, s, c, 1 - s - c)
            for n in (3, 10)
            for d, s, c in ((-2.0, 0.0, 0.6), (0.0, 0.01, 0.02), (2.0, 0.9, 0.0))
        ],
        columns=["n_seeds", "distance_pp", "supported", "contradicted", "inconclusive"],
    )
    fig = figures.operating_characteristics(oc, 0.05, "title")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["3 seeds", "10 seeds"]
    lines = {line.get_label(): line for line in axes[1].get_lines()}
    assert list(lines["supported"].get_ydata()) == [0.0, 0.01, 0.9]
    assert list(lines["contradicted"].get_xdata()) == [-2.0, 0.0, 2.0]
    assert list(lines["alpha = 0.05"].get_ydata()) == [0.05, 0.05]
    plt.close(fig)
