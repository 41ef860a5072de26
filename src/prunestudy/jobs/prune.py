"""``prunestudy prune-chunk`` and ``prunestudy trajectory``: an iterative method's trajectory, and its targets."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prunestudy.io.paths import target_label
from prunestudy.jobs.common import Context, check_base, job_key, log


def prune_chunk(
    ctx: Context,
    *,
    method: str,
    prune: dict,
    chunk: int,
    input: str,
    out_state: str,
    out_rows: str,
    out_record: str,
    base_identity: dict | None = None,
) -> None:
    """Advance the trajectory by one chunk of prunes from the previous chunk's state (or the large network),
    leaving the new state, the chunk's rows, a checkpoint per step and the record that vouches for them."""
    from prunestudy.io.artifacts import file_digest
    from prunestudy.io.paths import chunk_resume, steps_dir
    from prunestudy.io.records import write_job_record
    from prunestudy.methods import method as registered
    from prunestudy.pruning.trajectory import PruneState, run_chunk

    rt = ctx.runtime()
    m = registered(method)
    cfg = m.params(**prune)
    start, end = cfg.chunk_range(chunk)
    work = Path(out_state).parent
    state = PruneState.load(input)
    _check_input(ctx, chunk, input, state, base_identity)
    if state.step != start and not state.stopped:
        raise ValueError(f"{input} ends at step {state.step}, but chunk {chunk} starts at {start}")
    log.info("seed %d chunk %d: steps %d..%d from %s", ctx.seed, chunk, start + 1, end, input)
    resume = chunk_resume(work, chunk)
    if state.stopped:
        log.info("trajectory already stopped (%s); passing the state on", state.stopped)
        state.rows = []
    else:
        slices = {"data": ctx.data, "model": ctx.model, "prune": prune, "threads": ctx.threads}
        origin = [state.spec.spec_id, state.step, file_digest(input)]
        key = job_key("prune", **slices, experiment=ctx.experiment, seed=ctx.seed, chunk=chunk, **{"from": origin})
        state = run_chunk(
            state,
            ctx.load_data(rt),
            cfg,
            ctx.augment(),
            rt,
            method=m,
            seed=ctx.seed,
            base=ctx.base_spec(),
            end_step=end,
            steps_dir=steps_dir(work),
            resume_path=resume,
            resume_key=key,
        )
    _write_rows(state.rows, out_rows)
    state.identity = {"experiment": ctx.experiment, "seed": ctx.seed, "chunk": chunk}
    state.save(out_state)
    steps = [f"{steps_dir(work).name}/{row['checkpoint']}" for row in state.rows]
    write_job_record(out_record, state.identity, [Path(out_state).name, Path(out_rows).name, *steps])
    resume.unlink(missing_ok=True)


def _check_input(ctx: Context, chunk: int, path: str, state, base_identity: dict | None) -> None:
    """Chunk 0 starts from the large network of its seed; chunk c from chunk c-1 of the same trajectory."""
    from prunestudy.io.artifacts import expect

    if chunk == 0:
        check_base(path, state.spec, state.weights, state.identity, ctx.base_spec(), base_identity)
    else:
        wanted = {"experiment": ctx.experiment, "seed": ctx.seed, "chunk": chunk - 1}
        expect(path, "the trajectory state", wanted, state.identity)


def _write_rows(rows: list[dict], path: str) -> None:
    import pandas as pd

    from prunestudy.io.artifacts import atomic_write_text
    from prunestudy.pruning.trajectory import ROW_FIELDS

    atomic_write_text(path, pd.DataFrame(rows, columns=list(ROW_FIELDS)).to_csv(index=False))


def trajectory(
    ctx: Context,
    *,
    chunks: Sequence[str],
    prune: dict,
    out: str,
    out_record: str,
    targets: Sequence[float] = (),
    arch_dirs: Sequence[str] = (),
) -> None:
    """Join the chunk tables into one trajectory and sample it at every target (the pruned-and-tuned arm)."""
    import pandas as pd

    from prunestudy.io.artifacts import atomic_write_text, check_steps
    from prunestudy.io.records import write_job_record

    frames = [pd.read_csv(p) for p in chunks]
    df = pd.concat([f for f in frames if len(f)], ignore_index=True)
    if df.empty:
        raise ValueError("the trajectory has no steps")
    check_steps(df, " + ".join(chunks))
    atomic_write_text(out, df.to_csv(index=False))
    write_job_record(out_record, {"experiment": ctx.experiment, "seed": ctx.seed}, [Path(out).name])
    fraction = 100 * df["params_fraction"].iloc[-1]
    log.info("trajectory of %d steps, ending at %d params (%.1f%% of base)", len(df), df["params"].iloc[-1], fraction)
    if len(targets) != len(arch_dirs):
        raise ValueError(f"{len(targets)} targets for {len(arch_dirs)} output folders")
    for target, folder in zip(targets, arch_dirs, strict=True):
        extract(ctx, prune, out, df, target, Path(folder))


def extract(ctx: Context, prune: dict, trajectory_path: str, df, target: float, out: Path) -> None:
    """The first trajectory step at or below ``target`` x base params: its spec and its errors."""
    from prunestudy.arch import spec_from_json
    from prunestudy.io.artifacts import atomic_write_text, config_hash, file_digest, load_checkpoint
    from prunestudy.io.paths import steps_dir
    from prunestudy.io.records import RunRecord, identity, outputs_beside
    from prunestudy.pruning.arms import PRUNED
    from prunestudy.pruning.budgets import first_step_at_or_below

    i = first_step_at_or_below(df["params"].tolist(), target * ctx.base_spec().param_count())
    row = df.iloc[i]
    spec = spec_from_json(load_checkpoint(steps_dir(Path(trajectory_path).parent) / row["checkpoint"])["spec"])
    if spec.spec_id != row["spec_id"]:
        raise ValueError(
            f"checkpoint {row['checkpoint']} holds {spec.spec_id}, the table says {row['spec_id']}; "
            "rerun the pruning chunks"
        )
    atomic_write_text(out / "spec.json", spec.to_json() + "\n")
    slot = target_label(target)
    RunRecord.for_spec(
        spec,
        experiment=ctx.experiment,
        arm=PRUNED,
        seed=ctx.seed,
        identity=identity(ctx.experiment, PRUNED, ctx.seed, slot),
        **outputs_beside(out / "metrics.json"),
        inputs={"trajectory": file_digest(trajectory_path)},
        derived_seeds={"prune": ctx.seed},
        recipe=prune,
        epochs=0,
        final_train_loss=float(row["train_loss"]),
        val_error=float(row["val_error"]),
        test_error=float(row["test_error"]),
        wall_time_s=float(row["elapsed_s"]),
        throughput_img_s=0.0,
        device="trajectory",
        runtime={},
        config_hash=config_hash({"data": ctx.data, "model": ctx.model, "prune": prune, "target": target}),
        extra={"target": target, "step": int(row["step"])},
    ).write(out / "metrics.json")
    log.info(
        "target %.3g: step %d, %s, %d params, test error %.4f",
        target,
        row["step"],
        spec.spec_id,
        row["params"],
        row["test_error"],
    )
