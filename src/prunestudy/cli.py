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

from prunestudy.io.artifacts import config_hash
from prunestudy.io.paths import target_label
from prunestudy.io.stages import LOGIC_VERSIONS
from prunestudy.pruning.arms import PRUNED, TRAINED, TUNED


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
    _runtime_args(p)
    p.add_argument("--seed", type=int, required=True)


def _runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch threads (config key threads)")
    p.add_argument("--jobs-per-gpu", type=int, default=1, help="jobs that share one GPU (config gpu.jobs_per_gpu)")
    p.add_argument("--compile", default="auto", choices=["auto", "true", "false"], help="config gpu.compile")


def _load_data(data_cfg: dict, rt):
    from prunestudy.training import data

    return data.load(
        data_cfg["name"],
        data_cfg["root"],
        data_cfg["download"],
        data_cfg["val_size"],
        data_cfg["test_size"],
        data_cfg["split_seed"],
    ).to(rt.device)


def _augment(data_cfg: dict):
    from prunestudy.training.data import Augment

    return Augment(**data_cfg["augment"])


def _base_spec(args):
    from prunestudy.io.config import base_spec

    return base_spec(args.model, args.data)


def _finish(
    args,
    out: Path,
    spec,
    model,
    result,
    rt,
    *,
    slot: str | None,
    recipe: dict,
    extra: dict,
    slices: dict,
    seeds: dict,
    inputs: dict,
    mask=None,
):
    """What every trained network leaves: ``model.pt`` and ``metrics.json``, each saying which run it is."""
    from prunestudy.io.artifacts import save_checkpoint
    from prunestudy.io.records import RunRecord, identity, outputs_beside

    ident = identity(args.experiment, args.arm, args.seed, slot)
    save_checkpoint(out / "model.pt", {"spec": spec.to_json(), "state": model.state_dict(), "identity": ident})
    RunRecord.for_spec(
        spec,
        mask,
        experiment=args.experiment,
        arm=args.arm,
        seed=args.seed,
        derived_seeds=seeds,
        recipe=recipe,
        epochs=recipe["epochs"],
        final_train_loss=result.final_train_loss,
        val_error=result.val_error,
        test_error=result.test_error,
        wall_time_s=result.wall_time_s,
        throughput_img_s=result.images_per_s,
        device=str(rt.device),
        identity=ident,
        **outputs_beside(out / "metrics.json"),
        inputs=inputs,
        runtime=rt.describe(),
        config_hash=config_hash(slices),
        extra={**extra, "history": result.history},
    ).write(out / "metrics.json")
    logging.info("done: val error %.4f, test error %.4f", result.val_error, result.test_error)


def _training_hooks(args, spec, mask):
    """The hooks of a method's regulariser (base training) or of a mask (scratch arms on a mask)."""
    from prunestudy.methods import method
    from prunestudy.pruning import masks

    if mask is not None:
        return lambda model, opt: masks.hooks(model, opt, mask)
    if args.regulariser:
        reg = dict(args.regulariser)
        m = method(reg.pop("method"))
        return lambda model, opt: m.hooks(model, opt, spec, reg)
    return None


def cmd_train(args: argparse.Namespace) -> None:
    from prunestudy.arch import spec_from_json
    from prunestudy.io.config import member_spec
    from prunestudy.io.paths import train_resume
    from prunestudy.pruning import masks
    from prunestudy.pruning.arms import plan
    from prunestudy.pruning.oneshot import redraw_masked
    from prunestudy.training.loop import derive_seed, fit
    from prunestudy.training.recipe import Recipe
    from prunestudy.training.runtime import Runtime

    rt = Runtime.pick(args.device, args.jobs_per_gpu, args.compile, fixed_shape=True)
    sources = [args.mask or args.arch] if args.mask or args.arch else args.guide
    inputs = _check_sources(sources, args.source_record, args.source_expect) if sources else {}
    mask = None
    if args.mask:
        arch, mask = masks.load(args.mask)
    else:
        arch = spec_from_json(Path(args.arch).read_text()) if args.arch else None
    base, recipe = _base_spec(args), Recipe.from_dict(args.recipe)
    p = plan(
        args.arm,
        base,
        recipe,
        member_spec=lambda kind, value: member_spec(args.model, args.data, kind, value),
        arch=arch,
        member=args.member,
        scratch_epochs=args.scratch_e.get("epochs"),
        max_factor=args.scratch_b.get("max_factor"),
        arch_flops=masks.nonzero_flops(arch, mask) if mask else None,
        long_epochs=_longest_scratch_b(args, base, recipe) if args.long_from else None,
        guide=[spec_from_json(Path(g).read_text()) for g in args.guide],
    )
    out = Path(args.out)
    logging.info(
        "%s seed %d: %s, %d params, %d epochs on %s",
        args.arm,
        args.seed,
        p.spec.spec_id,
        masks.nonzero_params(p.spec, mask) if mask else p.spec.param_count(),
        p.recipe.epochs,
        rt.device,
    )
    data = _load_data(args.data, rt)
    run_seed = derive_seed(args.seed, args.arm, p.spec.spec_id)
    slices = _slices(args, ("data", "model", "recipe", "scratch_e", "scratch_b", "threads", "compile"))
    if args.regulariser:
        slices["regulariser"] = args.regulariser
    identity = {**slices, "arm": args.arm, "seed": args.seed, "spec": p.spec.to_dict()}
    identity["logic"] = LOGIC_VERSIONS["train"]
    if mask:
        identity["mask"] = masks.digest(mask)
    resume = train_resume(out)
    result = fit(
        p.spec,
        data,
        p.recipe,
        _augment(args.data),
        seed=run_seed,
        rt=rt,
        resume_path=resume,
        resume_key=config_hash(identity),
        hooks=_training_hooks(args, p.spec, mask),
        init=redraw_masked(mask) if mask else None,
    )
    _finish(
        args,
        out,
        p.spec,
        result.model,
        result,
        rt,
        recipe=p.recipe.to_dict(),
        slot=args.member_of,
        extra={**p.extra, "member_of": args.member_of, "regulariser": args.regulariser or None},
        slices=slices,
        seeds={"run": run_seed, "init": derive_seed(run_seed, "init")},
        inputs=inputs,
        mask=mask,
    )
    resume.unlink(missing_ok=True)


def _check_sources(paths: list[str], records: list[str] | None, expected: dict | list | None) -> dict:
    """Each spec or mask a run retrains is the file its pruning job recorded for the expected run."""
    from prunestudy.io.artifacts import file_digest
    from prunestudy.io.records import check_output

    expected = [expected] if isinstance(expected, dict) else expected
    if not records or not expected or not len(paths) == len(records) == len(expected):
        raise ValueError(f"{paths} need one --source-record and one --source-expect each, so that they can be checked")
    for path, record, exp in zip(paths, records, expected, strict=True):
        check_output(path, record, exp)
    if len(paths) == 1:
        return {"source": file_digest(paths[0])}
    return {f"source{i + 1}": file_digest(path) for i, path in enumerate(paths)}


def _longest_scratch_b(args, base, recipe) -> int:
    """The longest Scratch-B budget among the pruned networks ``--long-from`` names (specs or masks)."""
    from prunestudy.arch import spec_from_json
    from prunestudy.pruning import masks
    from prunestudy.pruning.budgets import longest_scratch_b

    flops = []
    for path in args.long_from:
        if path.endswith(".pt"):
            flops.append(masks.nonzero_flops(*masks.load(path)))
        else:
            flops.append(spec_from_json(Path(path).read_text()).flops())
    epochs_e = args.scratch_e.get("epochs") or recipe.epochs
    return longest_scratch_b(epochs_e, base.flops(), flops, args.scratch_b.get("max_factor"))


def cmd_oneshot(args: argparse.Namespace) -> None:
    """Prune the large network once to the target, fine-tune it: the pruned-and-tuned arm."""
    from prunestudy.arch import spec_from_json
    from prunestudy.io.artifacts import atomic_write_text, file_digest, load_checkpoint
    from prunestudy.io.config import base_spec
    from prunestudy.io.paths import train_resume
    from prunestudy.methods import method
    from prunestudy.pruning import masks
    from prunestudy.pruning.oneshot import calibration_batches, load_weights, prune_once
    from prunestudy.training.loop import derive_seed, fit
    from prunestudy.training.recipe import Recipe
    from prunestudy.training.runtime import Runtime

    rt = Runtime.pick(args.device, args.jobs_per_gpu, args.compile, fixed_shape=True)
    m = method(args.method)
    params = m.params(**args.prune)
    target = _target(args.target)
    ckpt = load_checkpoint(args.base_model)
    base = spec_from_json(ckpt["spec"])
    expected = base_spec(m.base_options(args.model), args.data)
    _check_base(args.base_model, base, ckpt["state"], ckpt.get("identity", {}), expected, args.base_identity)
    data = _load_data(args.data, rt)
    calibration = (
        calibration_batches(data, m.calibration, derive_seed(args.seed, "calibration")) if m.calibration else ()
    )
    pruned = prune_once(ckpt["state"], base, m, target, params, calibration)
    logging.info(
        "%s to %s: %s, %d -> %d params, %d -> %d FLOPs; %s",
        args.method,
        args.target,
        pruned.spec.spec_id,
        base.param_count(),
        pruned.params,
        base.flops(),
        pruned.flops,
        {k: v for k, v in pruned.record.items() if k != "removed"},
    )
    out = Path(args.out)
    recipe = Recipe.from_dict(args.finetune)
    run_seed = derive_seed(args.seed, "finetune", args.experiment, args.target)
    slices = _slices(args, ("data", "model", "prune", "finetune", "threads", "compile"))
    # the base's content, not only its spec: a retrained base must never continue a stale fine-tuning
    identity = {
        **slices,
        "target": args.target,
        "seed": args.seed,
        "arm": args.arm,
        "base": file_digest(args.base_model),
    }
    resume = train_resume(out)
    result = fit(
        pruned.spec,
        data,
        recipe,
        _augment(args.data),
        seed=run_seed,
        rt=rt,
        resume_path=resume,
        resume_key=config_hash({**identity, "logic": LOGIC_VERSIONS["prune"]}),
        hooks=(lambda model, opt: masks.hooks(model, opt, pruned.mask)) if pruned.mask else None,
        init=load_weights(pruned.state),
    )
    if pruned.mask:
        masks.save(out / "mask.pt", pruned.spec, pruned.mask)
    atomic_write_text(out / "spec.json", pruned.spec.to_json() + "\n")
    _finish(
        args,
        out,
        pruned.spec,
        result.model,
        result,
        rt,
        recipe=recipe.to_dict(),
        extra={
            "method": args.method,
            "target": target,
            "member_of": args.target,
            "pruning": pruned.record,
            "base_params": base.param_count(),
            "base_flops": base.flops(),
        },
        slot=args.target,
        slices=slices,
        seeds={"finetune": run_seed},
        inputs={"base": identity["base"]},
        mask=pruned.mask,
    )
    resume.unlink(missing_ok=True)


def _check_base(path: str, base, state: dict, identity: dict, expected_spec, expected: dict) -> None:
    """The large network a job prunes: the run its config expects (base name with method and regulariser,
    seed), byte for byte the weights that run's record vouches for, of the configured model, and weights
    that fit it."""
    from prunestudy.io.artifacts import expect
    from prunestudy.io.records import check_output
    from prunestudy.pruning.surgery import check_state

    check_output(path, Path(path).with_name("metrics.json"), expected)
    expect(path, "the large network", expected, identity)
    expect(path, "a network of the experiment's model", expected_spec.spec_id, base.spec_id)
    check_state(base, state, path)


def _target(text: str) -> float | str:
    """A target as the config gives it: a number (a fraction or a sparsity weight) or a setting's name."""
    try:
        return float(text)
    except ValueError:
        return text


def _write_csv(rows: list[dict], path: str, columns: tuple[str, ...]) -> None:
    import pandas as pd

    from prunestudy.io.artifacts import atomic_write_text

    atomic_write_text(path, pd.DataFrame(rows, columns=list(columns)).to_csv(index=False))


def cmd_prune_chunk(args: argparse.Namespace) -> None:
    from prunestudy.io.artifacts import file_digest
    from prunestudy.io.paths import chunk_resume, steps_dir
    from prunestudy.io.records import write_job_record
    from prunestudy.methods import method
    from prunestudy.pruning.trajectory import ROW_FIELDS, PruneState, run_chunk
    from prunestudy.training.runtime import Runtime

    rt = Runtime.pick(args.device, args.jobs_per_gpu)
    m = method(args.method)
    cfg = m.params(**args.prune)
    start, end = cfg.chunk_range(args.chunk)
    work = Path(args.out_state).parent
    state = PruneState.load(args.input)
    _check_chunk_input(args, state)
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
            method=m,
            seed=args.seed,
            base=_base_spec(args),
            end_step=end,
            steps_dir=steps_dir(work),
            resume_path=resume,
            resume_key=config_hash(
                {
                    **_slices(args, ("data", "model", "prune", "threads")),
                    "experiment": args.experiment,
                    "seed": args.seed,
                    "chunk": args.chunk,
                    "from": [state.spec.spec_id, state.step, file_digest(args.input)],
                    "logic": LOGIC_VERSIONS["prune"],
                }
            ),
        )
    _write_csv(state.rows, args.out_rows, ROW_FIELDS)
    state.identity = {"experiment": args.experiment, "seed": args.seed, "chunk": args.chunk}
    state.save(args.out_state)
    steps = [f"{steps_dir(work).name}/{row['checkpoint']}" for row in state.rows]
    written = [Path(args.out_state).name, Path(args.out_rows).name, *steps]
    write_job_record(args.out_record, state.identity, written)
    resume.unlink(missing_ok=True)


def _check_chunk_input(args, state) -> None:
    """Chunk 0 starts from the large network of its seed; chunk c from chunk c-1 of the same trajectory."""
    from prunestudy.io.artifacts import expect

    if args.chunk == 0:
        _check_base(args.input, state.spec, state.weights, state.identity, _base_spec(args), args.base_identity)
    else:
        wanted = {"experiment": args.experiment, "seed": args.seed, "chunk": args.chunk - 1}
        expect(args.input, "the trajectory state", wanted, state.identity)


def cmd_trajectory(args: argparse.Namespace) -> None:
    """Join the chunk tables into one trajectory and sample it at every target (the pruned-and-tuned arm)."""
    import pandas as pd

    from prunestudy.io.artifacts import atomic_write_text
    from prunestudy.io.records import write_job_record
    from prunestudy.pruning.trajectory import check_steps

    frames = [pd.read_csv(p) for p in args.chunks]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True)
    if df.empty:
        raise SystemExit("prunestudy: the trajectory has no steps")
    check_steps(df, " + ".join(args.chunks))
    atomic_write_text(args.out, df.to_csv(index=False))
    identity = {"experiment": args.experiment, "seed": args.seed}
    write_job_record(args.out_record, identity, [Path(args.out).name])
    logging.info(
        "trajectory of %d steps, ending at %d params (%.1f%% of base)",
        len(df),
        df["params"].iloc[-1],
        100 * df["params_fraction"].iloc[-1],
    )
    if len(args.budgets) != len(args.arch_dirs):
        raise ValueError(f"{len(args.budgets)} budgets for {len(args.arch_dirs)} output folders")
    for budget, out in zip(args.budgets, args.arch_dirs, strict=True):
        _extract(args, df, budget, Path(out))


def _extract(args, df, budget: float, out: Path) -> None:
    """The first trajectory step at or below ``budget`` x base params: its spec and its errors."""
    from prunestudy.arch import spec_from_json
    from prunestudy.io.artifacts import atomic_write_text, file_digest, load_checkpoint
    from prunestudy.io.paths import steps_dir
    from prunestudy.io.records import RunRecord, identity, outputs_beside
    from prunestudy.pruning.arms import PRUNED
    from prunestudy.pruning.budgets import first_step_at_or_below

    base = _base_spec(args)
    i = first_step_at_or_below(df["params"].tolist(), budget * base.param_count())
    row = df.iloc[i]
    ckpt = load_checkpoint(steps_dir(Path(args.out).parent) / row["checkpoint"])
    spec = spec_from_json(ckpt["spec"])
    if spec.spec_id != row["spec_id"]:
        raise SystemExit(
            f"prunestudy: checkpoint {row['checkpoint']} holds {spec.spec_id}, the table says "
            f"{row['spec_id']}; rerun the pruning chunks"
        )
    atomic_write_text(out / "spec.json", spec.to_json() + "\n")
    RunRecord.for_spec(
        spec,
        experiment=args.experiment,
        arm=PRUNED,
        seed=args.seed,
        identity=identity(args.experiment, PRUNED, args.seed, target_label(budget)),
        **outputs_beside(out / "metrics.json"),
        inputs={"trajectory": file_digest(args.out)},
        derived_seeds={"prune": args.seed},
        recipe=args.prune,
        epochs=0,
        final_train_loss=float(row["train_loss"]),
        val_error=float(row["val_error"]),
        test_error=float(row["test_error"]),
        wall_time_s=float(row["elapsed_s"]),
        throughput_img_s=0.0,
        device="trajectory",
        runtime={},
        config_hash=config_hash({**_slices(args, ("data", "model", "prune")), "budget": budget}),
        extra={"budget": budget, "step": int(row["step"]), "member_of": target_label(budget)},
    ).write(out / "metrics.json")
    logging.info(
        "budget %.3g: step %d, %s, %d params, test error %.4f",
        budget,
        row["step"],
        spec.spec_id,
        row["params"],
        row["test_error"],
    )


def cmd_latency(args: argparse.Namespace) -> None:
    """Time every distinct network of an experiment, alone on the device (all its GPU slots held)."""
    from prunestudy.io.artifacts import atomic_write_text
    from prunestudy.training.latency import latency_table
    from prunestudy.training.runtime import Runtime

    rt = Runtime.pick(args.device, args.jobs_per_gpu, alone=True)
    df = latency_table(args.metrics, rt, args.latency)
    atomic_write_text(args.out, df.to_csv(index=False))
    logging.info("latency of %d networks on %s", len(df), rt.describe().get("name", rt.device))


def cmd_collect(args: argparse.Namespace) -> None:
    import pandas as pd

    from prunestudy.analysis.collect import runs_table
    from prunestudy.analysis.tables import write_html
    from prunestudy.io.artifacts import atomic_write_text

    if len(args.expect) != len(args.metrics):
        raise ValueError(f"{len(args.metrics)} metrics files for {len(args.expect)} expected runs")
    df = runs_table(args.metrics, args.experiment, pd.read_csv(args.latency), args.expect)
    atomic_write_text(args.out, df.to_csv(index=False))
    write_html(df, Path(args.out).with_suffix(".html"))
    logging.info("collected %d runs: %s", len(df), df["arm"].value_counts().to_dict())


def cmd_compare(args: argparse.Namespace) -> None:
    """Every table of one experiment from its runs; its claims come from the study's `claims` step."""
    import pandas as pd

    from prunestudy.analysis import stats
    from prunestudy.analysis.claims import COMPARISONS
    from prunestudy.analysis.consistency import consistency_table, kept_frame
    from prunestudy.analysis.tables import errors_table, model_name, references_table, write_table
    from prunestudy.pruning.arms import PRUNED

    a = args.analysis
    runs = pd.read_csv(args.runs)
    out = Path(args.out_dir)
    errors, caption = errors_table(runs)
    write_table(errors, out / "errors", caption=caption)
    tables = {
        "budget_stats": stats.budget_table(runs),
        "paired": stats.paired_table(runs, COMPARISONS),
        "families": stats.family_table(runs, a["grid_points"]),
        "units": stats.units_table(runs, COMPARISONS, a["grid_points"]),
        "consistency_stats": consistency_table(kept_frame(runs[runs["arm"] == PRUNED])),
        "references": references_table(a["references"], runs, args.data["name"], model_name(args.model), args.method),
    }
    for name, df in tables.items():
        write_table(df, out / name)
    logging.info("wrote %s for %d runs", ", ".join(["errors", *tables]), len(runs))


def cmd_claims(args: argparse.Namespace) -> None:
    """The claims of every experiment in one table, decided together; each experiment's rows beside it."""
    import pandas as pd

    from prunestudy.analysis.claims import claims_table
    from prunestudy.analysis.tables import claims_latex, write_table
    from prunestudy.analysis.verdicts import HOLM_FAMILY
    from prunestudy.io.catalog import count_test_images

    if not len(args.experiments) == len(args.units) == len(args.per_experiment):
        raise ValueError("give one --units and --per-experiment per experiment, in the order of --experiments")
    units = {e: (args.trained[e], pd.read_csv(u)) for e, u in zip(args.experiments, args.units, strict=True)}
    a = args.analysis
    claims = claims_table(units, a["alpha"], a["equivalence_margin"], 1 / count_test_images(args.data))
    caption = f"Claims of every experiment. {HOLM_FAMILY}"
    write_table(claims, Path(args.out).with_suffix(""), tex=claims_latex(claims), caption=caption)
    for e, stem in zip(args.experiments, args.per_experiment, strict=True):
        rows = claims[claims["experiment"] == e]
        write_table(rows, Path(stem).with_suffix(""), tex=claims_latex(rows), caption=caption)
    for r in claims.itertuples():
        logging.info(f"{r.experiment:20} {r.claim:22} {r.verdict:13} {r.effect_pp:+.2f} pp (p_holm {r.p_holm:.3g})")


def cmd_calibrate(args: argparse.Namespace) -> None:
    """How often the study's claims table decides right, simulated at the spread its claims showed."""
    import numpy as np
    import pandas as pd

    from prunestudy.analysis import calibration, figures
    from prunestudy.analysis.tables import write_table
    from prunestudy.io.catalog import count_test_images

    a, n_test = args.analysis, count_test_images(args.data)
    design = calibration.Design.from_config(args.experiments, a["equivalence_margin"], n_test)
    observed = pd.read_csv(args.claims)["sd_pp"].to_numpy(float) / 100
    sd = float(np.nanmedian(observed)) if np.isfinite(observed).any() else 1 / n_test
    oc = calibration.operating_characteristics(design, sd, a["alpha"], a["calibration_studies"])
    caption = (
        f"Verdict rates of a claim against its true distance from the threshold, {design.claims} claims in the "
        f"study's Holm family, seed-level SD {100 * sd:.2f} pp (the median the claims showed), "
        f"{a['calibration_studies']} simulated studies per point."
    )
    out = Path(args.out_dir)
    write_table(oc, out / "tables" / "calibration", caption=caption)
    write_table(calibration.power_table(sd, a["alpha"], design.claims), out / "tables" / "power")
    title = f"One claim of {design.claims} in simulated studies, seed-level SD of its effect {100 * sd:.2f} pp"
    figure = figures.operating_characteristics(oc, a["alpha"], title)
    figures.save(figure, out / "figures" / "operating_characteristics")
    logging.info("calibrated %d claims at a seed-level SD of %.2f pp", design.claims, 100 * sd)


def cmd_figures(args: argparse.Namespace) -> None:
    import pandas as pd

    from prunestudy.analysis import figures
    from prunestudy.analysis.consistency import kept_frame
    from prunestudy.arch import spec_from_dict
    from prunestudy.io.artifacts import read_record
    from prunestudy.pruning.arms import BASE, PRUNED

    runs = pd.read_csv(args.runs)
    out = Path(args.out_dir)
    pruned = runs[runs["arm"] == PRUNED]
    if len(args.seeds) != len(args.trajectories):
        raise ValueError(f"{len(args.trajectories)} trajectories for {len(args.seeds)} seeds")
    pairs = zip(args.seeds, args.trajectories, strict=True)
    trajectories = {s: _read_trajectory(p, pruned[pruned["seed"] == s]) for s, p in pairs}  # checked before any write
    for x in ("params", "flops", "latency_ms"):  # prune steps have no latency: only trained networks are timed
        steps = trajectories if x != "latency_ms" else None
        figures.save(figures.error_vs(runs, x, steps), out / f"error_vs_{x.removesuffix('_ms')}")
    figures.save(figures.budget_arms(runs), out / "budget_arms")
    kept = kept_frame(pruned)
    figures.save(figures.channel_profile(kept), out / "channel_profile")
    figures.save(figures.consistency(kept), out / "consistency")
    if trajectories:
        base = spec_from_dict(read_record(runs.loc[runs["arm"] == BASE, "path"].iloc[0])["spec"]).widths_vector
        figures.save(figures.trajectory_heatmap(trajectories, list(base)), out / "trajectory_heatmap")


def _read_trajectory(path: str, pruned):
    """A trajectory, refused unless it is the one every network sampled from it was extracted from."""
    import pandas as pd

    from prunestudy.io.artifacts import expect, file_digest, read_record
    from prunestudy.pruning.trajectory import check_steps

    for record in pruned["path"]:
        expect(
            path,
            f"the trajectory {record} was sampled from (hash)",
            read_record(record)["inputs"]["trajectory"],
            file_digest(path),
        )
    df = pd.read_csv(path)
    check_steps(df, path)
    return df


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunestudy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one network (any arm) and write metrics.json and model.pt")
    _common(p)
    p.add_argument("--arm", required=True, choices=TRAINED)
    p.add_argument("--recipe", type=_json, required=True)
    p.add_argument("--scratch-e", type=_json, default={"epochs": None})
    p.add_argument("--scratch-b", type=_json, default={"max_factor": 2})
    p.add_argument("--arch", help="spec JSON of the sampled architecture (scratch arms, scaled source)")
    p.add_argument("--mask", help="a pruned network's mask.pt: the scratch arms keep its mask (unstructured pruning)")
    p.add_argument("--regulariser", type=_json, default={}, help="base training: {method, ...its settings}")
    p.add_argument(
        "--long-from",
        nargs="+",
        default=[],
        help="base-long: the pruned specs or masks whose longest Scratch-B budget it trains for",
    )
    p.add_argument("--member", type=float, help="k' (width), Z (bottleneck) or target param fraction (scaled)")
    p.add_argument("--member-of", default=None, help="the run's slot: the target an arch came from, or the member")
    p.add_argument("--guide", nargs="+", default=[], help="guided, uniform: every pruning seed's spec at the target")
    p.add_argument(
        "--source-record", nargs="+", help="the metrics.json beside --arch, --mask or each --guide (checked against it)"
    )
    p.add_argument(
        "--source-expect", type=_json, help="the run --arch or --mask comes from (JSON identity; a list for --guide)"
    )
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("oneshot", help="prune the large network once to a target, then fine-tune it")
    _common(p)
    p.add_argument("--method", required=True)
    p.add_argument("--prune", type=_json, required=True, help="the method's settings (JSON)")
    p.add_argument("--target", required=True)
    p.add_argument("--finetune", type=_json, required=True, help="the fine-tuning recipe (JSON)")
    p.add_argument("--base-model", required=True)
    p.add_argument("--base-identity", type=_json, required=True, help="the large network's run identity (JSON)")
    p.add_argument("--arm", default=PRUNED, choices=TUNED, help="pruned-long: the base is the long-trained one")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_oneshot)

    p = sub.add_parser("prune-chunk", help="run one chunk of an iterative method's prune-and-tune trajectory")
    _common(p)
    p.add_argument("--method", required=True, help="the iterative method (fisher, taylor, ...)")
    p.add_argument("--prune", type=_json, required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--input", required=True, help="the base model.pt or the previous chunk's state")
    p.add_argument("--base-identity", type=_json, help="chunk 0: the large network's run identity (JSON)")
    p.add_argument("--out-state", required=True)
    p.add_argument("--out-rows", required=True)
    p.add_argument("--out-record", required=True, help="the chunk's record: hashes of everything it wrote")
    p.set_defaults(func=cmd_prune_chunk)

    p = sub.add_parser("trajectory", help="join chunk tables into one trajectory and sample it at every budget")
    _common(p)
    p.add_argument("chunks", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--out-record", required=True, help="the trajectory's record (its hash)")
    p.add_argument("--prune", type=_json, required=True)
    p.add_argument("--budgets", nargs="+", type=float, default=[], help="fractions of base params to sample at")
    p.add_argument("--arch-dirs", nargs="+", default=[], help="where each budget's spec and metrics go, in order")
    p.set_defaults(func=cmd_trajectory)

    p = sub.add_parser("latency", help="time every distinct network of an experiment, alone on the device")
    p.add_argument("metrics", nargs="+")
    p.add_argument("--latency", type=_json, required=True, help="the latency config slice (JSON)")
    _runtime_args(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_latency)

    p = sub.add_parser("collect", help="one runs table from every metrics.json")
    p.add_argument("metrics", nargs="+")
    p.add_argument("--latency", required=True, help="the experiment's latency.csv")
    p.add_argument("--expect", type=_json, required=True, help="the identity of each metrics file, in order (JSON)")
    p.add_argument("--experiment", required=True, help="the experiment the table is of (shared bases included)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("compare", help="errors, statistics, consistency and reference tables of one experiment")
    p.add_argument("--runs", required=True)
    p.add_argument("--method", required=True, help="the experiment's pruning method (references match on it)")
    p.add_argument("--analysis", type=_json, required=True)
    p.add_argument("--data", type=_json, required=True)
    p.add_argument("--model", type=_json, required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("claims", help="the claims table of the whole study (Holm over every experiment)")
    p.add_argument("--experiments", nargs="+", required=True)
    p.add_argument("--units", nargs="+", required=True, help="each experiment's seed-level units table (CSV)")
    p.add_argument("--trained", type=_json, required=True, help="the arms each experiment trains (JSON)")
    p.add_argument("--analysis", type=_json, required=True)
    p.add_argument("--data", type=_json, required=True, help="the data config slice: errors' resolution")
    p.add_argument("--out", required=True, help="the study's claims.csv (.md, .tex and .html beside it)")
    p.add_argument("--per-experiment", nargs="+", required=True, help="each experiment's claims.csv")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("calibrate", help="the verdicts' error rates, simulated with the study's structure")
    p.add_argument("--claims", required=True, help="the study's claims.csv (its observed seed-level spread)")
    p.add_argument("--experiments", type=_json, required=True, help="the study's experiments (JSON)")
    p.add_argument("--analysis", type=_json, required=True)
    p.add_argument("--data", type=_json, required=True)
    p.add_argument("--out-dir", required=True, help="the study's results folder (tables/ and figures/ inside)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("figures", help="every figure, as PNG and PDF")
    p.add_argument("--runs", required=True)
    p.add_argument("--trajectories", nargs="+", default=[], help="an iterative method's trajectories")
    p.add_argument("--seeds", nargs="+", type=int, default=[], help="the seed of each trajectory, in order")
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
