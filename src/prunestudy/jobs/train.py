"""``prunestudy train``: one network of any arm trained from scratch (or from a mask's re-drawn weights)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunestudy.jobs.common import Context, job_key, log, parallel_record, write_run

if TYPE_CHECKING:
    from torch import nn

    from prunestudy.arch import ArchSpec
    from prunestudy.training.recipe import Recipe


def train(
    ctx: Context,
    *,
    arm: str,
    recipe: dict,
    out: str,
    scratch_e: dict | None = None,
    scratch_b: dict | None = None,
    arch: str | None = None,
    mask: str | None = None,
    regulariser: dict | None = None,
    long_from: Sequence[str] = (),
    member: float | None = None,
    slot: str | None = None,
    guide: Sequence[str] = (),
    source_record: Sequence[str] = (),
    source_expect: Any = None,
    lr: float | None = None,
    init: str | None = None,
    init_expect: dict | None = None,
) -> None:
    """Plan the arm (its spec and recipe, :func:`prunestudy.pruning.arms.plan`), train it, write its record.

    A large network also leaves its initial weights (``init.pt``); a winning ticket starts from them
    (``init``: that file, checked against the large network's record for the run ``init_expect``)."""
    from prunestudy.io.paths import train_resume
    from prunestudy.pruning import masks
    from prunestudy.training import distributed
    from prunestudy.training.loop import derive_seed, fit

    rt = ctx.runtime(fixed_shape=True)
    sources = [mask or arch] if mask or arch else list(guide)
    inputs = check_sources(sources, source_record, source_expect) if sources else {}
    scratch_e, scratch_b = scratch_e or {}, scratch_b or {}
    spec, loaded_mask = _source(arch, mask)
    p = _plan(ctx, arm, recipe, spec, loaded_mask, scratch_e, scratch_b, member, long_from, guide, lr)
    params = masks.nonzero_params(p.spec, loaded_mask) if loaded_mask else p.spec.param_count()
    log.info(
        "%s seed %d: %s, %d params, %d epochs on %s", arm, ctx.seed, p.spec.spec_id, params, p.recipe.epochs, rt.device
    )
    data = ctx.load_data(rt)
    run_seed = derive_seed(ctx.seed, arm, p.spec.spec_id)
    slices = {"data": ctx.data, "model": ctx.model, "recipe": recipe, "scratch_e": scratch_e, "scratch_b": scratch_b}
    slices |= {"threads": ctx.threads, "compile": ctx.compile, **({"regulariser": regulariser} if regulariser else {})}
    parallel = parallel_record(p.recipe.batch_size)
    key_parts = {**slices, "arm": arm, "seed": ctx.seed, "spec": p.spec.to_dict(), **({"lr": lr} if lr else {})}
    key_parts |= parallel
    if loaded_mask:
        key_parts["mask"] = masks.digest(loaded_mask)
    resume = train_resume(Path(out))
    start = _start(ctx, arm, p.spec, run_seed, loaded_mask, Path(out), slot, init, init_expect, source_record)
    if init:
        inputs["init"] = start.digest
    result = fit(
        p.spec,
        data,
        p.recipe,
        ctx.augment(),
        seed=run_seed,
        rt=rt,
        resume_path=resume,
        resume_key=job_key("train", **key_parts),
        hooks=_training_hooks(p.spec, loaded_mask, regulariser),
        init=start.init,
    )
    write_run(
        Path(out),
        ctx,
        arm,
        slot,
        p.spec,
        result.model,
        result,
        rt,
        recipe=p.recipe.to_dict(),
        extra={**p.extra, "regulariser": regulariser or None, **parallel},
        slices=slices,
        seeds={"run": run_seed, "init": derive_seed(run_seed, "init")},
        inputs=inputs,
        mask=loaded_mask,
    )
    if distributed.is_main():
        resume.unlink(missing_ok=True)


@dataclass(frozen=True)
class _Start:
    init: Callable[[nn.Module], None] | None  # what fit does to the seeded initialisation
    digest: str | None = None  # the initial weights' file, for the record's inputs


def _start(ctx, arm, spec, run_seed, mask, out: Path, slot, init, init_expect, source_record) -> _Start:
    """How the run starts: a large network saves its seeded initialisation first (for the winning tickets);
    a winning ticket loads the one it was drawn from; a mask re-draws the weights it keeps."""
    from prunestudy.io.artifacts import file_digest
    from prunestudy.io.records import identity
    from prunestudy.pruning.arms import BASE, WINNING_TICKET
    from prunestudy.pruning.oneshot import redraw_masked
    from prunestudy.training import distributed

    if arm == BASE and distributed.is_main():
        save_initial_weights(out / "init.pt", spec, run_seed, identity(ctx.experiment, arm, ctx.seed, slot))
    if arm == WINNING_TICKET:
        return _Start(ticket_start(init, init_expect, spec, mask, source_record[0]), file_digest(init))
    return _Start(redraw_masked(mask) if mask else None)


def _source(arch: str | None, mask: str | None) -> tuple[ArchSpec | None, dict | None]:
    """The pruned architecture a run retrains: a spec, or a mask beside its (unchanged) spec."""
    from prunestudy.arch import spec_from_json
    from prunestudy.pruning import masks

    if mask:
        return masks.load(mask)
    return (spec_from_json(Path(arch).read_text()) if arch else None), None


def _plan(ctx, arm, recipe_cfg, spec, mask, scratch_e, scratch_b, member, long_from, guide, lr):
    from prunestudy.arch import spec_from_json
    from prunestudy.io.config import member_spec
    from prunestudy.pruning import masks
    from prunestudy.pruning.arms import plan
    from prunestudy.training.recipe import Recipe

    base, recipe = ctx.base_spec(), Recipe.from_dict(recipe_cfg)
    return plan(
        arm,
        base,
        recipe,
        member_spec=lambda kind, value: member_spec(ctx.model, ctx.data, kind, value),
        arch=spec,
        member=member,
        scratch_epochs=scratch_e.get("epochs"),
        max_factor=scratch_b.get("max_factor"),
        arch_flops=masks.nonzero_flops(spec, mask) if mask else None,
        long_epochs=longest_scratch_b(long_from, base, recipe, scratch_e, scratch_b) if long_from else None,
        guide=[spec_from_json(Path(g).read_text()) for g in guide],
        lr=lr,
    )


def save_initial_weights(path: Path, spec: ArchSpec, run_seed: int, ident: dict) -> None:
    """The large network's weights at epoch 0, exactly those :func:`prunestudy.training.loop.fit` starts from
    (the same seed draws the same initialisation), kept for the winning tickets."""
    import torch

    from prunestudy.io.artifacts import save_checkpoint
    from prunestudy.training.loop import derive_seed

    torch.manual_seed(derive_seed(run_seed, "init"))
    save_checkpoint(path, {"spec": spec.to_json(), "state": spec.build().state_dict(), "identity": ident})


def ticket_start(init: str, expected: dict, pruned: ArchSpec, mask: dict | None, record: str):
    """An ``init`` for :func:`fit`: the pruned network at the large network's initial weights, checked first
    (the file its training recorded, of the run expected) and cut with the pruning's own removals."""
    from prunestudy.arch import spec_from_json
    from prunestudy.io.artifacts import load_checkpoint, read_record
    from prunestudy.io.records import check_output
    from prunestudy.methods import method
    from prunestudy.pruning.oneshot import load_weights, winning_ticket

    check_output(init, Path(init).with_name("metrics.json"), expected)
    pruning = read_record(record)["extra"]
    removals = None if mask is not None else pruning["pruning"]["removals"]
    ckpt = load_checkpoint(init)
    state = winning_ticket(
        ckpt["state"], spec_from_json(ckpt["spec"]), pruned, method(pruning["method"]), removals, mask
    )
    return load_weights(state)


def _training_hooks(spec: ArchSpec, mask: dict | None, regulariser: dict | None):
    """The hooks of a method's regulariser (base training) or of a mask (scratch arms on a mask)."""
    from prunestudy.methods import method
    from prunestudy.pruning import masks

    if mask is not None:
        return lambda model, opt: masks.hooks(model, opt, mask)
    if regulariser:
        reg = dict(regulariser)
        m = method(reg.pop("method"))
        return lambda model, opt: m.hooks(model, opt, spec, reg)
    return None


def check_sources(paths: Sequence[str], records: Sequence[str] | None, expected: dict | list | None) -> dict:
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


def longest_scratch_b(paths: Sequence[str], base: ArchSpec, recipe: Recipe, scratch_e: dict, scratch_b: dict) -> int:
    """The longest Scratch-B budget among the pruned networks ``paths`` name (specs or masks)."""
    from prunestudy.arch import spec_from_json
    from prunestudy.pruning import masks
    from prunestudy.pruning.budgets import longest_scratch_b as longest

    flops = []
    for path in paths:
        if path.endswith(".pt"):
            flops.append(masks.nonzero_flops(*masks.load(path)))
        else:
            flops.append(spec_from_json(Path(path).read_text()).flops())
    epochs_e = scratch_e.get("epochs") or recipe.epochs
    return longest(epochs_e, base.flops(), flops, scratch_b.get("max_factor"))
