"""The training step, evaluation and a resumable training run, in one process or data-parallel.

The loop is deliberately small (in the spirit of airbench and nanoGPT): a seeded permutation per
epoch, index-gathered batches augmented on the device, and a learning rate computed from the epoch
number. Nothing random is carried between epochs, so resuming needs only the weights, the
optimizer state and the epoch counter, and a resumed run is bit-identical to an uninterrupted one.

The loop reads data through :class:`~prunestudy.training.data.Batches`: the in-memory datasets
(:class:`~prunestudy.training.data.InMemory`, the generator calls the loop has always made) or ImageNet
streamed from its folders (:class:`~prunestudy.training.imagefolder.ImageFolderData`).

**Data-parallel training** (several processes started by torchrun or ``srun``; see
:mod:`prunestudy.training.distributed`). The recipe's ``batch_size`` is the global batch, whatever the
number of processes: every rank draws the same global order and augmentation, as one process would,
and computes its own slice of each batch (:class:`~prunestudy.training.data.Shard`); DDP averages the
gradients, so every rank takes the same step and the learning rate stays a function of the epoch.

- *BatchNorm is per rank*, as in Liu et al.'s and torchvision's ImageNet recipes (plain BN on each GPU,
  batch statistics over the rank's batch_size / world_size images), not SyncBatchNorm: SyncBatchNorm
  costs two collectives per BN layer per step, breaks torch.compile's graphs at every BN layer, and
  runs on CUDA only (so the CPU tests could not hold it). The consequence, recorded in the resume state:
  a run's arithmetic depends on its number of processes (the BN batch), and resume state is used only
  by a run with as many. Running statistics are rank 0's (DDP broadcasts them at every forward, and
  :func:`~prunestudy.training.distributed.broadcast_buffers` before every evaluation).
- *Method hooks* (:class:`~prunestudy.methods.base.TrainHooks`) run on every rank, on the whole model:
  after ``backward`` the gradients are already averaged over the ranks, so a mask, Slimming's
  subgradient or SSS's proximal step does the same on every rank and the replicas stay equal. A hook
  that accumulated per-sample statistics (Fisher or Taylor saliency) would see its rank's shard only;
  those run in the single-process trajectory jobs, never here.
- *Evaluation is sharded*: each rank counts correct predictions on a contiguous part of the split and
  the counts are summed. Integer counts sum exactly in any order, so the error is deterministic and the
  one a single process would count with the same weights; evaluating the whole split on every rank
  would repeat the decoding of ImageNet's 50,000 test images on every GPU.
- Rank 0 alone writes resume state (the others wait at a barrier), and the caller writes outputs from
  rank 0 only (:func:`~prunestudy.training.distributed.is_main`).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch import ArchSpec
from prunestudy.io.artifacts import load_resume, save_checkpoint
from prunestudy.methods.base import TrainHooks
from prunestudy.training import distributed
from prunestudy.training.data import (
    Augment,
    Batch,
    Batches,
    Dataset,
    InMemory,
    Shard,
    Split,
    derive_seed,
)
from prunestudy.training.optim import SGD
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

log = logging.getLogger("prunestudy")
EVAL_BATCH = 1000


class NonFiniteLossError(RuntimeError):
    """Training diverged; continuing would only waste compute."""


class ResumeMismatchError(RuntimeError):
    """Resume state written by a run on another number of processes (its BN batch differed)."""


def make_optimizer(model: nn.Module, recipe: Recipe) -> SGD:
    """SGD over every parameter, with the recipe's weight decay."""
    return SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )


def step(
    model: nn.Module, opt: SGD, rt: Runtime, x: torch.Tensor, y: torch.Tensor, hooks: TrainHooks | None = None
) -> torch.Tensor:
    """One SGD step on a ready batch (on the device, normalised); returns the detached loss (no host sync).

    The method's hooks run after ``backward`` and after the step; under DDP ``backward`` has already
    averaged the gradients over the ranks when they run.
    """
    with rt.autocast():
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    for f in hooks.after_backward if hooks else ():
        f()
    opt.step()
    for f in hooks.after_step if hooks else ():
        f()
    return loss.detach()


def train_step(
    model: nn.Module,
    opt: SGD,
    data: Dataset,
    rt: Runtime,
    batch: Batch,
    aug: Augment,
    hooks: TrainHooks | None = None,
) -> torch.Tensor:
    """One SGD step on ``batch`` of the training split; returns the detached loss (no host sync)."""
    return step(model, opt, rt, rt.batch(data, data.train, batch, aug), data.train.y[batch.idx], hooks)


@torch.no_grad()
def error_rate(
    model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], rt: Runtime, *, across_ranks: bool = False
) -> float:
    """Error rate = 1 - total correct / total samples (never an average of per-batch accuracies).

    ``across_ranks``: each rank counted its own part of the split; the counts are summed over the ranks
    (exactly: they are integers) before dividing.
    """
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=rt.device)
    n = 0
    for x, y in batches:
        with rt.autocast():
            correct += (model(x).argmax(1) == y).sum()
        n += len(y)
    model.train(was_training)
    if across_ranks:
        counts = distributed.all_sum(torch.stack([correct, torch.tensor(n, device=rt.device)]))
        correct, n = counts[0], int(counts[1])
    return 1.0 - correct.item() / n


def evaluate(model: nn.Module, data: Dataset, split: Split, rt: Runtime, batch_size: int = EVAL_BATCH) -> float:
    """The error rate of ``model`` on an in-memory ``split``, in batches of ``batch_size``."""
    batches = (
        (rt.batch(data, split, Batch(idx)), split.y[idx])
        for idx in torch.arange(len(split), device=rt.device).split(batch_size)
    )
    return error_rate(model, batches, rt)


def check_finite(loss: float, where: str) -> None:
    if not math.isfinite(loss):
        raise NonFiniteLossError(f"training loss became {loss} {where}; lower the learning rate or check the data")


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict]
    final_train_loss: float
    val_error: float
    test_error: float
    wall_time_s: float
    images_per_s: float


def _progress(total: int, initial: int):
    if not sys.stderr.isatty() or not distributed.is_main():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", leave=False)


def fit(
    spec: ArchSpec,
    data: Dataset | Batches,
    recipe: Recipe,
    aug: Augment | None = None,
    *,
    seed: int,
    rt: Runtime,
    resume_path: str | os.PathLike | None = None,
    resume_key: str = "",
    hooks: Callable[[nn.Module, SGD], TrainHooks] | None = None,
    init: Callable[[nn.Module], None] | None = None,
) -> FitResult:
    """Train ``spec`` from a seeded init, saving resume state after every epoch.

    ``data`` is an in-memory :class:`Dataset` (augmented by ``aug`` on the device) or any
    :class:`Batches` source, which brings its own augmentation (``aug`` is then unused).
    ``hooks`` makes a pruning method's :class:`TrainHooks` for the model and its optimizer; ``init``
    replaces or edits the seeded init before training (loading pruned weights to fine-tune them,
    re-drawing the weights a mask keeps).

    Resume state is used only if it carries the same ``resume_key`` (the job's config hash).

    The test split is evaluated once, after the final epoch; per-epoch selection signals use the
    validation split only. Started as several processes, it trains data-parallel (module docstring).
    """
    source = InMemory(data, aug or Augment()) if isinstance(data, Dataset) else data
    part = distributed.shard()
    if part.world > 1:
        part.rows(recipe.batch_size)  # refuses a global batch that does not split over the processes
    torch.manual_seed(derive_seed(seed, "init"))
    model = spec.build()
    if init:
        init(model)
    model = rt.prepare(model)
    opt = make_optimizer(model, recipe)
    step_hooks = hooks(model, opt) if hooks else None
    start, history, elapsed = _resume(model, opt, resume_path, resume_key, rt, part.world, recipe.epochs)
    train_forward, eval_forward = training_forwards(model, rt, part.world)
    bar = _progress(recipe.epochs, start)
    model.train()
    for epoch in range(start, recipe.epochs):
        t0 = time.perf_counter()
        opt.lr = recipe.lr_at(epoch)
        train_loss, n = _train_epoch(train_forward, opt, source, recipe.batch_size, epoch, seed, rt, part, step_hooks)
        check_finite(train_loss, f"at epoch {epoch + 1}")
        val_error = _split_error(eval_forward, model, source, "val", rt, part)
        dt = time.perf_counter() - t0
        elapsed += dt
        images = n * recipe.batch_size
        row = {"epoch": epoch + 1, "lr": recipe.lr_at(epoch), "train_loss": train_loss, "val_error": val_error}
        history.append(row | {"seconds": dt, "images_per_s": images / dt})
        _report(row, recipe.epochs, images / dt, elapsed / (epoch + 1) * (recipe.epochs - epoch - 1), bar)
        if resume_path:
            _save_resume(resume_path, model, opt, history, elapsed, resume_key, part.world)
    if bar:
        bar.close()
    test_error = _split_error(eval_forward, model, source, "test", rt, part)
    seen = sum(h["images_per_s"] * h["seconds"] for h in history)
    last = history[-1]
    return FitResult(
        model, history, last["train_loss"], last["val_error"], test_error, elapsed, seen / elapsed if elapsed else 0.0
    )


def training_forwards(model: nn.Module, rt: Runtime, world: int) -> tuple[nn.Module, nn.Module]:
    """What runs the training and the evaluation forward passes: the (compiled) model in one process;
    under DDP the wrapped model trains and the bare one evaluates (a DDP forward is a collective, and
    the ranks' evaluation parts may take different numbers of batches)."""
    if world == 1:
        forward = rt.compiled(model)
        return forward, forward
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(model, device_ids=[rt.device.index] if rt.cuda else None)
    return rt.compiled(ddp), rt.compiled(model)


def _train_epoch(
    forward: nn.Module,
    opt: SGD,
    source: Batches,
    batch_size: int,
    epoch: int,
    seed: int,
    rt: Runtime,
    part: Shard,
    hooks: TrainHooks | None,
) -> tuple[float, int]:
    """One epoch of steps on this rank's shard of every global batch: the mean global-batch loss (each
    rank's shard mean, averaged over the ranks: every rank gets the same number) and the batch count."""
    loss_sum = torch.zeros((), device=rt.device)
    n = 0
    for x, y in source.train_batches(epoch, batch_size, seed, rt.device, part):
        loss_sum += step(forward, opt, rt, x, y, hooks)
        n += 1
    return distributed.all_sum(loss_sum).item() / part.world / n, n


def _split_error(forward: nn.Module, model: nn.Module, source: Batches, split: str, rt: Runtime, part: Shard) -> float:
    """The error on ``split``: counted on this rank's part, with rank 0's BN statistics, summed over ranks."""
    if part.world > 1:
        distributed.broadcast_buffers(model)
    batches = source.eval_batches(split, source.eval_batch_size, rt.device, part)
    return error_rate(forward, batches, rt, across_ranks=part.world > 1)


def _resume(
    model: nn.Module, opt: SGD, path: str | os.PathLike | None, key: str, rt: Runtime, world: int, epochs: int
) -> tuple[int, list, float]:
    """(first epoch, history, elapsed seconds) from resume state written for this job, or a fresh start.

    Every rank reads rank 0's file, and the ranks must agree on where they resume.
    """
    state = load_resume(path, key, rt.device) if path else None
    start, history, elapsed = 0, [], 0.0
    if state:
        written = state.get("world_size", 1)
        if written != world:
            raise ResumeMismatchError(
                f"{path} was written by a run on {written} process(es), and this run has {world}: BatchNorm's "
                f"batch (batch_size / processes) would change mid-run. Resume it on {written}, or delete it."
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        start, history, elapsed = state["epoch"], state["history"], state["elapsed"]
        if distributed.is_main():
            log.info("resuming from epoch %d of %d (%s)", start, epochs, path)
    distributed.check_same(start, "the epoch to resume from")
    return start, history, elapsed


def _save_resume(
    path: str | os.PathLike, model: nn.Module, opt: SGD, history: list, elapsed: float, key: str, world: int
) -> None:
    """Rank 0 writes the resume state; the others wait, so a rank past this point knows it is on disk."""
    if distributed.is_main():
        save_checkpoint(
            path,
            {
                "epoch": history[-1]["epoch"],
                "model": model.state_dict(),
                "optim": opt.state_dict(),
                "history": history,
                "elapsed": elapsed,
                "resume_key": key,
                "world_size": world,
            },
        )
    distributed.barrier()


def _report(row: dict, epochs: int, images_per_s: float, left: float, bar) -> None:
    """The epoch's line in the log (rank 0's only) and the progress bar."""
    if not distributed.is_main():
        return
    log.info(
        "epoch %d/%d  loss %.4f  val error %.4f  %.0f img/s  %.1fs left",
        row["epoch"],
        epochs,
        row["train_loss"],
        row["val_error"],
        images_per_s,
        left,
    )
    if bar:
        bar.update(1)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_err=f"{row['val_error']:.3f}")
