"""The analysis jobs: collect an experiment's runs, its tables and figures, the study's claims and calibration.

None of them imports torch: they read records, CSV tables and (for a masked run) a mask's kept fractions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from prunestudy.jobs.common import log


def collect(*, metrics: Sequence[str], latency: str, expect: list[dict], experiment: str, out: str) -> None:
    """One runs table from every metrics.json, each refused unless it is the run its slot expects."""
    import pandas as pd

    from prunestudy.analysis.collect import runs_table
    from prunestudy.analysis.tables import write_html
    from prunestudy.io.artifacts import atomic_write_text

    if len(expect) != len(metrics):
        raise ValueError(f"{len(metrics)} metrics files for {len(expect)} expected runs")
    df = runs_table(metrics, experiment, pd.read_csv(latency), expect)
    atomic_write_text(out, df.to_csv(index=False))
    write_html(df, Path(out).with_suffix(".html"))
    log.info("collected %d runs: %s", len(df), df["arm"].value_counts().to_dict())


def compare(*, runs: str, method: str, analysis: dict, data: dict, model: dict, out_dir: str) -> None:
    """Every table of one experiment from its runs; its claims come from the study's ``claims`` job."""
    import pandas as pd

    from prunestudy.analysis import stats
    from prunestudy.analysis.claims import comparisons
    from prunestudy.analysis.collect import compared
    from prunestudy.analysis.consistency import consistency_table, kept_frame
    from prunestudy.analysis.tables import errors_table, model_name, references_table, write_table
    from prunestudy.pruning.arms import PRUNED

    frame = compared(pd.read_csv(runs))
    pairs = comparisons(frame["arm"])
    out = Path(out_dir)
    errors, caption = errors_table(frame)
    write_table(errors, out / "errors", caption=caption)
    grid = analysis["grid_points"]
    tables = {
        "target_stats": stats.target_table(frame),
        "paired": stats.paired_table(frame, pairs),
        "families": stats.family_table(frame, grid),
        "units": stats.units_table(frame, pairs, grid),
        "consistency_stats": consistency_table(kept_frame(frame[frame["arm"] == PRUNED])),
        "references": references_table(analysis["references"], frame, data["name"], model_name(model), method),
    }
    for name, df in tables.items():
        write_table(df, out / name)
    log.info("wrote %s for %d runs", ", ".join(["errors", *tables]), len(frame))


def claims(
    *,
    experiments: Sequence[str],
    units: Sequence[str],
    trained: Mapping[str, Sequence[str]],
    analysis: dict,
    data: dict,
    out: str,
    per_experiment: Sequence[str],
) -> None:
    """The claims of every experiment in one table, decided together; each experiment's rows beside it."""
    import pandas as pd

    from prunestudy.analysis.claims import claims_table
    from prunestudy.analysis.tables import claims_latex, write_table
    from prunestudy.analysis.verdicts import HOLM_FAMILY
    from prunestudy.io.catalog import count_test_images

    if not len(experiments) == len(units) == len(per_experiment):
        raise ValueError("give one --units and --per-experiment per experiment, in the order of --experiments")
    tables = {e: (trained[e], pd.read_csv(u)) for e, u in zip(experiments, units, strict=True)}
    table = claims_table(tables, analysis["alpha"], analysis["equivalence_margin"], 1 / count_test_images(data))
    caption = f"Claims of every experiment. {HOLM_FAMILY}"
    write_table(table, Path(out).with_suffix(""), tex=claims_latex(table), caption=caption)
    for e, stem in zip(experiments, per_experiment, strict=True):
        rows = table[table["experiment"] == e]
        write_table(rows, Path(stem).with_suffix(""), tex=claims_latex(rows), caption=caption)
    for r in table.itertuples():
        log.info(f"{r.experiment:20} {r.claim:22} {r.verdict:13} {r.effect_pp:+.2f} pp (p_holm {r.p_holm:.3g})")


def calibrate(*, claims: str, experiments: list[dict], analysis: dict, data: dict, out_dir: str) -> None:
    """How often the study's claims table decides right, simulated at the spread its claims showed."""
    import numpy as np
    import pandas as pd

    from prunestudy.analysis import calibration, figures
    from prunestudy.analysis.tables import write_table
    from prunestudy.io.catalog import count_test_images

    a, n_test = analysis, count_test_images(data)
    design = calibration.Design.from_config(experiments, a["equivalence_margin"], n_test)
    observed = pd.read_csv(claims)["sd_pp"].to_numpy(float) / 100
    sd = float(np.nanmedian(observed)) if np.isfinite(observed).any() else 1 / n_test
    oc = calibration.operating_characteristics(design, sd, a["alpha"], a["calibration_studies"])
    caption = (
        f"Verdict rates of a claim against its true distance from the threshold, {design.claims} claims in the "
        f"study's Holm family, seed-level SD {100 * sd:.2f} pp (the median the claims showed), "
        f"{a['calibration_studies']} simulated studies per point."
    )
    out = Path(out_dir)
    write_table(oc, out / "tables" / "calibration", caption=caption)
    write_table(calibration.power_table(sd, a["alpha"], design.claims), out / "tables" / "power")
    title = f"One claim of {design.claims} in simulated studies, seed-level SD of its effect {100 * sd:.2f} pp"
    figure = figures.operating_characteristics(oc, a["alpha"], title)
    figures.save(figure, out / "figures" / "operating_characteristics")
    log.info("calibrated %d claims at a seed-level SD of %.2f pp", design.claims, 100 * sd)


def figures(*, runs: str, out_dir: str, trajectories: Sequence[str] = (), seeds: Sequence[int] = ()) -> None:
    """Every figure of one experiment, the trajectories (an iterative method's) checked before any is drawn."""
    import pandas as pd

    from prunestudy.analysis import figures as draw
    from prunestudy.analysis.collect import compared
    from prunestudy.analysis.consistency import kept_frame
    from prunestudy.arch import spec_from_dict
    from prunestudy.io.artifacts import read_record
    from prunestudy.pruning.arms import BASE, PRUNED

    frame = compared(pd.read_csv(runs))
    out = Path(out_dir)
    pruned = frame[frame["arm"] == PRUNED]
    if len(seeds) != len(trajectories):
        raise ValueError(f"{len(trajectories)} trajectories for {len(seeds)} seeds")
    steps = {s: read_trajectory(p, pruned[pruned["seed"] == s]) for s, p in zip(seeds, trajectories, strict=True)}
    for x in ("params", "flops", "latency_ms"):  # prune steps have no latency: only trained networks are timed
        figure = draw.error_vs(frame, x, steps if x != "latency_ms" else None)
        draw.save(figure, out / f"error_vs_{x.removesuffix('_ms')}")
    draw.save(draw.target_arms(frame), out / "target_arms")
    kept = kept_frame(pruned)
    draw.save(draw.channel_profile(kept), out / "channel_profile")
    draw.save(draw.consistency(kept), out / "consistency")
    if steps:
        base = spec_from_dict(read_record(frame.loc[frame["arm"] == BASE, "path"].iloc[0])["spec"]).widths_vector
        draw.save(draw.trajectory_heatmap(steps, list(base)), out / "trajectory_heatmap")


def read_trajectory(path: str, pruned):
    """A trajectory, refused unless it is the one every network sampled from it was extracted from."""
    import pandas as pd

    from prunestudy.io.artifacts import check_steps, expect, file_digest, read_record

    for record in pruned["path"]:
        recorded = read_record(record)["inputs"]["trajectory"]
        expect(path, f"the trajectory {record} was sampled from (hash)", recorded, file_digest(path))
    df = pd.read_csv(path)
    check_steps(df, path)
    return df
