"""``prunestudy <stage>``: thin command-line wrappers over the library, one per workflow rule.

Each command takes the config slices it depends on as JSON strings (the rule's ``params:``) and
never reads the whole config.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from prunestudy.arms import TRAINED
from prunestudy.artifacts import config_hash
from prunestudy.stages import LOGIC_VERSIONS


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err


def _setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


def _slices(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    return {n: getattr(args, n) for n in names}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--experiment", required=True, help="the experiment's name (recorded in every artefact)")
    p.add_argument("--data", type=_json, required=True, help="the data config slice (JSON)")
    p.add_argument("--model", type=_json, required=True, help="the experiment's model options (JSON)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, required=True)


def _load_data(data_cfg: dict, rt):
    from prunestudy import data

    return data.load(
        data_cfg["name"],
        data_cfg["root"],
        data_cfg["download"],
        data_cfg["val_size"],
        data_cfg["test_size"],
        data_cfg["split_seed"],
    ).to(rt.device)


def _augment(data_cfg: dict):
    from prunestudy.data import Augment

    return Augment(**data_cfg["augment"])


def _base_spec(args):
    from prunestudy.config import base_spec

    return base_spec(args.model, args.data)


def cmd_train(args: argparse.Namespace) -> None:
    from prunestudy.arch import spec_from_json
    from prunestudy.arms import plan
    from prunestudy.artifacts import save_checkpoint
    from prunestudy.config import member_spec
    from prunestudy.paths import train_resume
    from prunestudy.records import RunRecord
    from prunestudy.train import Recipe, Runtime, derive_seed, fit, measure_latency

    rt = Runtime.pick(args.device)
    arch = spec_from_json(Path(args.arch).read_text()) if args.arch else None
    p = plan(
        args.arm,
        _base_spec(args),
        Recipe.from_dict(args.recipe),
        member_spec=lambda kind, value: member_spec(args.model, args.data, kind, value),
        arch=arch,
        member=args.member,
        scratch_epochs=args.scratch_e.get("epochs"),
        max_factor=args.scratch_b.get("max_factor"),
    )
    out = Path(args.out)
    logging.info(
        "%s seed %d: %s, %d params, %d epochs on %s",
        args.arm,
        args.seed,
        p.spec.spec_id,
        p.spec.param_count(),
        p.recipe.epochs,
        rt.device,
    )
    data = _load_data(args.data, rt)
    run_seed = derive_seed(args.seed, args.arm, p.spec.spec_id)
    slices = _slices(args, ("data", "model", "recipe", "scratch_e", "scratch_b", "latency"))
    key = config_hash(
        {**slices, "arm": args.arm, "seed": args.seed, "spec": p.spec.to_dict(), "logic": LOGIC_VERSIONS["train"]}
    )
    resume = train_resume(out)
    result = fit(p.spec, data, p.recipe, _augment(args.data), seed=run_seed, rt=rt, resume_path=resume, resume_key=key)
    latency = measure_latency(
        result.model, p.spec, rt, args.latency["batch_size"], args.latency["repeats"], args.latency["warmup"]
    )
    save_checkpoint(out / "model.pt", {"spec": p.spec.to_json(), "state": result.model.state_dict()})
    RunRecord.for_spec(
        p.spec,
        experiment=args.experiment,
        arm=args.arm,
        latency_ms=latency,
        latency_batch=args.latency["batch_size"],
        seed=args.seed,
        derived_seeds={"run": run_seed, "init": derive_seed(run_seed, "init")},
        recipe=p.recipe.to_dict(),
        epochs=p.recipe.epochs,
        final_train_loss=result.final_train_loss,
        val_error=result.val_error,
        test_error=result.test_error,
        wall_time_s=result.wall_time_s,
        throughput_img_s=result.images_per_s,
        device=str(rt.device),
        config_hash=config_hash(slices),
        extra={**p.extra, "member_of": args.member_of, "history": result.history},
    ).write(out / "metrics.json")
    resume.unlink(missing_ok=True)
    logging.info("done: val error %.4f, test error %.4f", result.val_error, result.test_error)


def _write_csv(rows: list[dict], path: str, columns: tuple[str, ...]) -> None:
    import pandas as pd

    from prunestudy.artifacts import atomic_write_text

    atomic_write_text(path, pd.DataFrame(rows, columns=list(columns)).to_csv(index=False))


def cmd_prune_chunk(args: argparse.Namespace) -> None:
    from prunestudy.methods.fisher import FisherParams
    from prunestudy.paths import chunk_resume, steps_dir
    from prunestudy.train import Runtime
    from prunestudy.trajectory import ROW_FIELDS, PruneState, run_chunk

    rt = Runtime.pick(args.device)
    cfg = FisherParams(**args.prune)
    start, end = cfg.chunk_range(args.chunk)
    work = Path(args.out_state).parent
    state = PruneState.load(args.input)
    if state.step != start and not state.stopped:
        raise SystemExit(
            f"prunestudy: {args.input} ends at step {state.step}, but chunk {args.chunk} starts at {start}"
        )
    logging.info("seed %d chunk %d: steps %d..%d from %s", args.seed, args.chunk, start + 1, end, args.input)
    resume = chunk_resume(work, args.chunk)
    if state.stopped:
        logging.info("trajectory already stopped (%s); passing the state on", state.stopped)
        state.rows = []
    else:
        data = _load_data(args.data, rt)
        state = run_chunk(
            state,
            data,
            cfg,
            _augment(args.data),
            rt,
            seed=args.seed,
            base=_base_spec(args),
            end_step=end,
            steps_dir=steps_dir(work),
            resume_path=resume,
            resume_key=config_hash(
                {
                    **_slices(args, ("data", "model", "prune")),
                    "experiment": args.experiment,
                    "seed": args.seed,
                    "chunk": args.chunk,
                    "from": [state.spec.spec_id, state.step],
                    "logic": LOGIC_VERSIONS["prune"],
                }
            ),
        )
    _write_csv(state.rows, args.out_rows, ROW_FIELDS)
    state.save(args.out_state)
    resume.unlink(missing_ok=True)


def cmd_trajectory(args: argparse.Namespace) -> None:
    import pandas as pd

    from prunestudy.artifacts import atomic_write_text

    frames = [pd.read_csv(p) for p in args.chunks]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True)
    if df.empty:
        raise SystemExit("prunestudy: the trajectory has no steps")
    if not (df["step"].diff().dropna() == 1).all() or df["step"].iloc[0] != 1:
        raise SystemExit("prunestudy: chunk tables do not form one contiguous trajectory starting at step 1")
    atomic_write_text(args.out, df.to_csv(index=False))
    logging.info(
        "trajectory of %d steps, ending at %d params (%.1f%% of base)",
        len(df),
        df["params"].iloc[-1],
        100 * df["params_fraction"].iloc[-1],
    )


def cmd_extract(args: argparse.Namespace) -> None:
    import pandas as pd

    from prunestudy.arch import spec_from_json
    from prunestudy.arms import PRUNED
    from prunestudy.artifacts import atomic_write_text, load_checkpoint
    from prunestudy.budgets import first_step_at_or_below
    from prunestudy.paths import steps_dir
    from prunestudy.records import RunRecord
    from prunestudy.surgery import materialise
    from prunestudy.train import Runtime, measure_latency

    rt = Runtime.pick(args.device)
    base = _base_spec(args)
    df = pd.read_csv(args.trajectory)
    i = first_step_at_or_below(df["params"].tolist(), args.budget * base.param_count())
    row = df.iloc[i]
    ckpt = load_checkpoint(steps_dir(Path(args.trajectory).parent) / row["checkpoint"])
    spec = spec_from_json(ckpt["spec"])
    if spec.spec_id != row["spec_id"]:
        raise SystemExit(
            f"prunestudy: checkpoint {row['checkpoint']} holds {spec.spec_id}, the table says "
            f"{row['spec_id']}; rerun the pruning chunks"
        )
    model = rt.prepare(materialise(spec, ckpt["state"], rt.device))
    latency = measure_latency(
        model, spec, rt, args.latency["batch_size"], args.latency["repeats"], args.latency["warmup"]
    )
    out = Path(args.out)
    atomic_write_text(out / "spec.json", spec.to_json() + "\n")
    RunRecord.for_spec(
        spec,
        experiment=args.experiment,
        arm=PRUNED,
        latency_ms=latency,
        latency_batch=args.latency["batch_size"],
        seed=args.seed,
        derived_seeds={"prune": args.seed},
        recipe=args.prune,
        epochs=0,
        final_train_loss=float(row["train_loss"]),
        val_error=float(row["val_error"]),
        test_error=float(row["test_error"]),
        wall_time_s=float(row["elapsed_s"]),
        throughput_img_s=0.0,
        device=str(rt.device),
        config_hash=config_hash(_slices(args, ("data", "model", "prune", "latency", "budget"))),
        extra={"budget": args.budget, "step": int(row["step"]), "member_of": args.budget},
    ).write(out / "metrics.json")
    logging.info(
        "budget %.3g: step %d, %s, %d params, test error %.4f",
        args.budget,
        row["step"],
        spec.spec_id,
        row["params"],
        row["test_error"],
    )


def cmd_collect(args: argparse.Namespace) -> None:
    from prunestudy.artifacts import atomic_write_text
    from prunestudy.collect import runs_table

    df = runs_table(args.metrics)
    atomic_write_text(args.out, df.to_csv(index=False))
    logging.info("collected %d runs: %s", len(df), df["arm"].value_counts().to_dict())


def cmd_compare(args: argparse.Namespace) -> None:
    import pandas as pd

    from prunestudy import stats
    from prunestudy.claims import claims_table
    from prunestudy.tables import model_name, references_table, write_table

    a = args.analysis
    runs = pd.read_csv(args.runs)
    out = Path(args.out_dir)
    budget = stats.budget_table(runs)
    paired = stats.paired_table(runs, a["bootstrap_resamples"])
    families = stats.family_table(runs, a["grid_points"], a["bootstrap_resamples"])
    claims = claims_table(paired, families, a["alpha"], a["equivalence_margin"])
    refs = references_table(a["references"], runs, args.data["name"], model_name(args.model))
    for name, df in (
        ("budget_stats", budget),
        ("paired", paired),
        ("families", families),
        ("claims", claims),
        ("references", refs),
    ):
        write_table(df, out / name)
    for r in claims.itertuples():
        logging.info("%-22s %-13s effect %+.2f pp (p_holm %.3g)", r.claim, r.verdict, r.effect_pp, r.p_holm)


def cmd_figures(args: argparse.Namespace) -> None:
    import pandas as pd

    from prunestudy import figures
    from prunestudy.arch import spec_from_dict
    from prunestudy.arms import BASE, PRUNED
    from prunestudy.artifacts import read_json

    runs = pd.read_csv(args.runs)
    out = Path(args.out_dir)
    for x in ("params", "flops", "latency_ms"):
        figures.save(figures.error_vs(runs, x), out / f"error_vs_{x.removesuffix('_ms')}")
    figures.save(figures.budget_arms(runs), out / "budget_arms")
    pruned = runs[runs["arm"] == PRUNED]
    specs = pd.DataFrame(
        {
            "seed": pruned["seed"],
            "budget": pruned["budget"],
            "widths": [list(spec_from_dict(read_json(p)["spec"]).widths_vector) for p in pruned["path"]],
        }
    )
    figures.save(figures.channel_profile(specs), out / "channel_profile")
    figures.save(figures.consistency(specs), out / "consistency")
    base = spec_from_dict(read_json(runs.loc[runs["arm"] == BASE, "path"].iloc[0])["spec"]).widths_vector
    if len(args.seeds) != len(args.trajectories):
        raise ValueError(f"{len(args.trajectories)} trajectories for {len(args.seeds)} seeds")
    trajectories = {s: pd.read_csv(p) for s, p in zip(args.seeds, args.trajectories, strict=True)}
    figures.save(figures.trajectory_heatmap(trajectories, list(base)), out / "trajectory_heatmap")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunestudy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one network (any arm) and write metrics.json and model.pt")
    _common(p)
    p.add_argument("--arm", required=True, choices=TRAINED)
    p.add_argument("--recipe", type=_json, required=True)
    p.add_argument("--latency", type=_json, required=True)
    p.add_argument("--scratch-e", type=_json, default={"epochs": None})
    p.add_argument("--scratch-b", type=_json, default={"max_factor": 2})
    p.add_argument("--arch", help="spec JSON of the sampled architecture (scratch arms, scaled source)")
    p.add_argument("--member", type=float, help="k' (width), Z (bottleneck) or target param fraction (scaled)")
    p.add_argument("--member-of", default=None, help="label recorded in extra, e.g. the budget an arch came from")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("prune-chunk", help="run one chunk of the Fisher prune-and-tune trajectory")
    _common(p)
    p.add_argument("--prune", type=_json, required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--input", required=True, help="the base model.pt or the previous chunk's state")
    p.add_argument("--out-state", required=True)
    p.add_argument("--out-rows", required=True)
    p.set_defaults(func=cmd_prune_chunk)

    p = sub.add_parser("trajectory", help="join chunk tables into one trajectory table")
    p.add_argument("chunks", nargs="+")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_trajectory)

    p = sub.add_parser("extract", help="sample the first trajectory step at or below a parameter budget")
    _common(p)
    p.add_argument("--prune", type=_json, required=True)
    p.add_argument("--latency", type=_json, required=True)
    p.add_argument("--trajectory", required=True)
    p.add_argument("--budget", type=float, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("collect", help="one runs table from every metrics.json")
    p.add_argument("metrics", nargs="+")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("compare", help="statistics, claims and reference tables")
    p.add_argument("--runs", required=True)
    p.add_argument("--analysis", type=_json, required=True)
    p.add_argument("--data", type=_json, required=True)
    p.add_argument("--model", type=_json, required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("figures", help="every figure, as PNG and PDF")
    p.add_argument("--runs", required=True)
    p.add_argument("--trajectories", nargs="+", required=True)
    p.add_argument("--seeds", nargs="+", type=int, required=True, help="the seed of each trajectory, in order")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_figures)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _setup(getattr(args, "threads", 1))
    t0 = time.perf_counter()
    try:
        args.func(args)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        logging.getLogger("prunestudy").debug("traceback", exc_info=True)
        raise SystemExit(f"prunestudy {args.command}: error: {err}") from err
    logging.info("%s finished in %.1fs", args.command, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
