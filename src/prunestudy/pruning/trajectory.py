"""The iterative prune-and-tune trajectory of any iterative method (Fisher, Taylor), run in resumable chunks.

Each step fine-tunes ``every`` minibatches at a constant learning rate while the method's capture
accumulates its scores, removes the globally lowest-scoring channel physically (weights, BN and momentum),
evaluates the smaller network on the val and test splits, and leaves a checkpoint and a row.
The minibatches of step t come from a generator seeded by (seed, t), so a chunk resumed after a
kill replays exactly what an uninterrupted chunk would have done.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    pass

from prunestudy.arch import ArchSpec, spec_from_json
from prunestudy.io.artifacts import ArtifactError, load_checkpoint, load_resume, save_checkpoint
from prunestudy.io.paths import step_checkpoint
from prunestudy.methods.base import IterativeParams, Method
from prunestudy.methods.selectors import one_at_a_time
from prunestudy.pruning.surgery import load_momentum, materialise, momentum_by_name, remove_channels
from prunestudy.training.data import Augment, Dataset, draw_batches
from prunestudy.training.loop import check_finite, derive_seed, evaluate, make_optimizer, train_step
from prunestudy.training.runtime import Runtime

log = logging.getLogger("prunestudy")

ROW_FIELDS = (
    "step",
    "group",
    "channel",
    "saliency",
    "params",
    "flops",
    "params_fraction",
    "val_error",
    "test_error",
    "train_loss",
    "elapsed_s",
    "spec_id",
    "widths",
    "checkpoint",
)


@dataclass
class PruneState:
    """Everything needed to continue a trajectory: the network, its momentum and where we are."""

    spec: ArchSpec
    weights: dict[str, torch.Tensor]
    momentum: dict[str, torch.Tensor]
    step: int = 0
    stopped: str = ""
    elapsed_s: float = 0.0
    rows: list[dict] = field(default_factory=list)
    resume_key: str = ""
    identity: dict = field(default_factory=dict)  # whose trajectory: experiment, seed, chunk (or the base's)

    def payload(self, with_weights: bool = True) -> dict:
        """Plain data for :func:`save_checkpoint` (no deep copy of the tensors, unlike ``asdict``)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if with_weights or f.name != "weights"}
        d["spec"] = self.spec.to_json()
        return d

    def save(self, path: str | os.PathLike) -> None:
        save_checkpoint(path, self.payload())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PruneState:
        return cls.from_payload(load_checkpoint(path))

    @classmethod
    def from_payload(cls, d: dict) -> PruneState:
        if "weights" not in d:  # a trained base model: start a fresh trajectory
            return cls(spec_from_json(d["spec"]), d["state"], {}, identity=d.get("identity", {}))
        d["spec"] = spec_from_json(d["spec"])
        return cls(**d)


def _step_batches(n: int, every: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    reps = math.ceil(every * batch_size / n)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(reps)])
    return list(order[: every * batch_size].split(batch_size))


def _load_resume(path: Path, key: str, steps_dir: Path) -> PruneState | None:
    resumed = load_resume(path, key)
    if not resumed:
        return None
    ckpt_path = steps_dir / resumed.pop("checkpoint")
    try:
        ckpt = load_checkpoint(ckpt_path) if ckpt_path.exists() else {}
    except ArtifactError as err:  # e.g. truncated by a full disk: redo the chunk rather than stop
        log.warning("ignoring %s: %s", path, err)
        return None
    if ckpt.get("step") != resumed["step"] or ckpt.get("spec") != resumed["spec"]:
        log.warning("ignoring %s: its step checkpoint no longer matches it", path)
        return None
    return PruneState.from_payload({**resumed, "weights": ckpt["state"]})


def prune_step(
    state: PruneState,
    model: nn.Module,
    data: Dataset,
    cfg: IterativeParams,
    aug: Augment,
    rt: Runtime,
    seed: int,
    base_flops: int,
    method: type[Method],
) -> tuple[PruneState, nn.Module, float, tuple[int, int, float]]:
    """Fine-tune ``model`` (the network of ``state``) for ``cfg.every`` minibatches with saliency capture,
    then remove one channel; returns the new state and the smaller network, built from the new spec."""
    model.train()
    opt = make_optimizer(model, cfg.recipe)
    load_momentum(model, opt, state.momentum)
    capture = method.watch(model, state.spec)
    gen = torch.Generator().manual_seed(derive_seed(seed, "prune", state.step))
    loss_sum = torch.zeros((), device=rt.device)
    for batch in draw_batches(_step_batches(len(data.train), cfg.every, cfg.batch_size, gen), aug, gen, rt.device):
        loss_sum += train_step(model, opt, data, rt, batch, aug, capture.hooks)
    capture.close()
    train_loss = loss_sum.item() / cfg.every
    check_finite(train_loss, f"while fine-tuning before prune {state.step + 1}")
    group, channel, score = one_at_a_time(capture.scores(), state.spec, cfg.flops_weight, base_flops)
    removal = {state.spec.groups()[group].name: [channel]}
    spec, weights = remove_channels(state.spec, {k: v.detach() for k, v in model.state_dict().items()}, removal)
    _, momentum = remove_channels(state.spec, momentum_by_name(model, opt), removal)
    smaller = rt.prepare(materialise(spec, weights, rt.device))
    new_state = replace(state, spec=spec, weights=weights, momentum=momentum, step=state.step + 1)
    return new_state, smaller, train_loss, (group, channel, score)


def run_chunk(
    state: PruneState,
    data: Dataset,
    cfg: IterativeParams,
    aug: Augment,
    rt: Runtime,
    *,
    method: type[Method],
    seed: int,
    base: ArchSpec,
    end_step: int,
    steps_dir: Path,
    resume_path: Path,
    resume_key: str = "",
) -> PruneState:
    """Advance ``state`` to ``end_step`` (or until it stops), checkpointing every step.

    ``resume_path`` is rewritten after every step with everything but the weights, which are the
    step's checkpoint; a killed chunk restarts from it, provided it was written with the same
    ``resume_key`` (the job's config hash).
    """
    resumed = _load_resume(resume_path, resume_key, steps_dir)
    if resumed:
        state = resumed
        log.info("resuming chunk at step %d (%s)", state.step, resume_path)
    else:
        state.rows = []  # rows belong to the chunk that made them
    state.resume_key = resume_key
    base_params, base_flops = base.param_count(), base.flops()
    start = state.step
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=end_step - start, unit="prune", leave=False)
    model = rt.prepare(materialise(state.spec, state.weights, rt.device))
    while state.step < end_step and not state.stopped:
        t0 = time.perf_counter()
        state, model, train_loss, removed = prune_step(state, model, data, cfg, aug, rt, seed, base_flops, method)
        errors = evaluate(model, data, data.val, rt), evaluate(model, data, data.test, rt)
        ckpt = step_checkpoint(steps_dir, state.step)
        save_checkpoint(ckpt, {"spec": state.spec.to_json(), "state": state.weights, "step": state.step})
        state.elapsed_s += time.perf_counter() - t0
        row = _step_row(state, removed, errors, train_loss, base_params, ckpt.name)
        state.rows.append(row)
        state.stopped = _stop_reason(state.spec, row["params"], cfg, base_params)
        save_checkpoint(resume_path, {**state.payload(with_weights=False), "checkpoint": ckpt.name})
        _log_step(row, base_params, (time.perf_counter() - t0) * (end_step - state.step))
        if bar:
            bar.update(1)
        if state.stopped:
            log.info("trajectory stops after step %d: %s", state.step, state.stopped)
    if bar:
        bar.close()
    return state


def _step_row(
    state: PruneState,
    removed: tuple[int, int, float],
    errors: tuple[float, float],
    train_loss: float,
    base_params: int,
    checkpoint: str,
) -> dict:
    """One row of the trajectory: the channel a step removed and the network it left."""
    (group, channel, score), (val_error, test_error) = removed, errors
    params = state.spec.param_count()
    return {
        "step": state.step,
        "group": group,
        "channel": channel,
        "saliency": score,
        "params": params,
        "flops": state.spec.flops(),
        "params_fraction": params / base_params,
        "val_error": val_error,
        "test_error": test_error,
        "train_loss": train_loss,
        "elapsed_s": state.elapsed_s,
        "spec_id": state.spec.spec_id,
        "widths": ";".join(map(str, state.spec.widths_vector)),
        "checkpoint": checkpoint,
    }


def _stop_reason(spec: ArchSpec, params: int, cfg: IterativeParams, base_params: int) -> str:
    """Why the trajectory ends after this step; empty while it goes on."""
    if spec.prunable_channels == 0:
        return "no prunable channel left"
    if params <= cfg.param_floor * base_params:
        return f"parameter floor {cfg.param_floor} reached"
    return ""


def _log_step(row: dict, base_params: int, left_s: float) -> None:
    log.info(
        "prune %d: group %d ch %d  params %d (%.1f%%)  val err %.4f  test err %.4f  loss %.4f  ~%.0fs left",
        row["step"],
        row["group"],
        row["channel"],
        row["params"],
        100 * row["params"] / base_params,
        row["val_error"],
        row["test_error"],
        row["train_loss"],
        left_s,
    )
