"""``prunestudy oneshot``: prune the large network once to a target and fine-tune it (the pruned-and-tuned arm)."""

from __future__ import annotations

from pathlib import Path

from prunestudy.jobs.common import Context, check_base, job_key, log, parallel_record, parse_target, write_run


def oneshot(
    ctx: Context,
    *,
    method: str,
    prune: dict,
    target: str,
    finetune: dict,
    base_model: str,
    base_identity: dict,
    arm: str,
    out: str,
) -> None:
    """Check the large network, prune it once (:func:`prunestudy.pruning.oneshot.prune_once`), fine-tune the
    pruned network from its inherited weights, and leave its spec (and mask), weights and record."""
    from prunestudy.io.artifacts import atomic_write_text, file_digest
    from prunestudy.io.paths import train_resume
    from prunestudy.pruning import masks
    from prunestudy.pruning.oneshot import load_weights
    from prunestudy.training import distributed
    from prunestudy.training.loop import derive_seed, fit
    from prunestudy.training.recipe import Recipe

    rt = ctx.runtime(fixed_shape=True)
    base, pruned, data = _prune(ctx, rt, method, prune, target, base_model, base_identity)
    recipe = Recipe.from_dict(finetune)
    run_seed = derive_seed(ctx.seed, "finetune", ctx.experiment, target)
    slices = {"data": ctx.data, "model": ctx.model, "prune": prune, "finetune": finetune}
    slices |= {"threads": ctx.threads, "compile": ctx.compile}
    parallel = parallel_record(recipe.batch_size)
    # the base's content, not only its spec: a retrained base must never continue a stale fine-tuning
    base_digest = file_digest(base_model)
    resume = train_resume(Path(out))
    result = fit(
        pruned.spec,
        data,
        recipe,
        ctx.augment(),
        seed=run_seed,
        rt=rt,
        resume_path=resume,
        resume_key=job_key("prune", **slices, target=target, seed=ctx.seed, arm=arm, base=base_digest, **parallel),
        hooks=(lambda model, opt: masks.hooks(model, opt, pruned.mask)) if pruned.mask else None,
        init=load_weights(pruned.state),
    )
    if distributed.is_main():  # the other processes of a data-parallel job hold the same network
        if pruned.mask:
            masks.save(Path(out) / "mask.pt", pruned.spec, pruned.mask)
        atomic_write_text(Path(out) / "spec.json", pruned.spec.to_json() + "\n")
    extra = {"method": method, "target": parse_target(target), "pruning": pruned.record, **parallel}
    extra |= {"base_params": base.param_count(), "base_flops": base.flops()}
    write_run(
        Path(out),
        ctx,
        arm,
        target,
        pruned.spec,
        result.model,
        result,
        rt,
        recipe=recipe.to_dict(),
        extra=extra,
        slices=slices,
        seeds={"finetune": run_seed},
        inputs={"base": base_digest},
        mask=pruned.mask,
    )
    if distributed.is_main():
        resume.unlink(missing_ok=True)


def _prune(ctx: Context, rt, method: str, prune: dict, target: str, base_model: str, base_identity: dict):
    """The large network, checked to be the run expected before anything else loads; the network one
    application of ``method`` to ``target`` makes of it (a method that reads activations gets a seeded draw
    of training images); and the data, loaded once for both."""
    from prunestudy.arch import spec_from_json
    from prunestudy.io.artifacts import load_checkpoint
    from prunestudy.methods import method as registered
    from prunestudy.pruning.oneshot import calibration_batches, prune_once
    from prunestudy.training.loop import derive_seed

    m = registered(method)
    ckpt = load_checkpoint(base_model)
    base = spec_from_json(ckpt["spec"])
    expected = ctx.base_spec(m.base_options(ctx.model))
    check_base(base_model, base, ckpt["state"], ckpt.get("identity", {}), expected, base_identity)
    data = ctx.load_data(rt)
    calibration = ()
    if m.calibration:
        calibration = calibration_batches(data, m.calibration, derive_seed(ctx.seed, "calibration"))
    pruned = prune_once(ckpt["state"], base, m, parse_target(target), m.params(**prune), calibration)
    summary = {k: v for k, v in pruned.record.items() if k not in ("removed", "removals")}
    log.info(
        "%s to %s: %s, %d -> %d params, %d -> %d FLOPs; %s",
        method,
        target,
        pruned.spec.spec_id,
        base.param_count(),
        pruned.params,
        base.flops(),
        pruned.flops,
        summary,
    )
    return base, pruned, data
