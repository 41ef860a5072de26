"""The training step, evaluation and a resumable training run.

The loop is deliberately small (in the spirit of airbench and nanoGPT): a seeded permutation per
epoch, index-gathered batches augmented on the device, and a learning rate computed from the epoch
number. Nothing random is carried between epochs, so resuming needs only the weights, the
optimizer state and the epoch counter, and a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch import ArchSpec
from prunestudy.io.artifacts import load_resume, save_checkpoint
from prunestudy.methods.base import TrainHooks
from prunestudy.training.data import Augment, Batch, Dataset, Split, draw_batches, epoch_batches
from prunestudy.training.optim import SGD
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

log = logging.getLogger("prunestudy")


class NonFiniteLossError(RuntimeError):
    """Training diverged; continuing would only waste compute."""


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from a run's identity, e.g. ``derive_seed(seed, "init", arm)``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def make_optimizer(model: nn.Module, recipe: Recipe) -> SGD:
    """SGD over every parameter, with the recipe's weight decay."""
    return SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=recipe.nesterov,
    )


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
    x = rt.batch(data, data.train, batch, aug)
    with rt.autocast():
        loss = F.cross_entropy(model(x), data.train.y[batch.idx])
    opt.zero_grad()
    loss.backward()
    for f in hooks.after_backward if hooks else ():
        f()
    opt.step()
    for f in hooks.after_step if hooks else ():
        f()
    return loss.detach()


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, split: Split, rt: Runtime, batch_size: int = 1000) -> float:
    """Error rate = 1 - total correct / total samples (never an average of per-batch accuracies)."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=rt.device)
    for idx in torch.arange(len(split), device=rt.device).split(batch_size):
        with rt.autocast():
            correct += (model(rt.batch(data, split, Batch(idx))).argmax(1) == split.y[idx]).sum()
    model.train(was_training)
    return 1.0 - correct.item() / len(split)


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
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="epoch", leave=False)


def fit(
    spec: ArchSpec,
    data: Dataset,
    recipe: Recipe,
    aug: Augment,
    *,
    seed: int,
    rt: Runtime,
    resume_path: str | os.PathLike | None = None,
    resume_key: str = "",
    hooks: Callable[[nn.Module, SGD], TrainHooks] | None = None,
    init: Callable[[nn.Module], None] | None = None,
) -> FitResult:
    """Train ``spec`` from a seeded init, saving resume state after every epoch.

    ``hooks`` makes a pruning method's :class:`TrainHooks` for the model and its optimizer; ``init``
    replaces or edits the seeded init before training (loading pruned weights to fine-tune them,
    re-drawing the weights a mask keeps).

    Resume state is used only if it carries the same ``resume_key`` (the job's config hash).

    The test split is evaluated once, after the final epoch; per-epoch selection signals use the
    validation split only.
    """
    torch.manual_seed(derive_seed(seed, "init"))
    model = spec.build()
    if init:
        init(model)
    model = rt.prepare(model)
    forward = rt.compiled(model)
    opt = make_optimizer(model, recipe)
    step_hooks = hooks(model, opt) if hooks else None
    start, history, elapsed = 0, [], 0.0
    state = load_resume(resume_path, resume_key, rt.device) if resume_path else None
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        start, history, elapsed = state["epoch"], state["history"], state["elapsed"]
        log.info("resuming from epoch %d of %d (%s)", start, recipe.epochs, resume_path)
    bar = _progress(recipe.epochs, start)
    model.train()
    for epoch in range(start, recipe.epochs):
        t0 = time.perf_counter()
        opt.lr = recipe.lr_at(epoch)
        gen = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
        batches = draw_batches(epoch_batches(len(data.train), recipe.batch_size, gen), aug, gen, rt.device)
        loss_sum = torch.zeros((), device=rt.device)
        for batch in batches:
            loss_sum += train_step(forward, opt, data, rt, batch, aug, step_hooks)
        train_loss = loss_sum.item() / len(batches)
        check_finite(train_loss, f"at epoch {epoch + 1}")
        val_error = evaluate(forward, data, data.val, rt)
        dt = time.perf_counter() - t0
        elapsed += dt
        images = len(batches) * recipe.batch_size
        history.append(
            {
                "epoch": epoch + 1,
                "lr": recipe.lr_at(epoch),
                "train_loss": train_loss,
                "val_error": val_error,
                "seconds": dt,
                "images_per_s": images / dt,
            }
        )
        left = elapsed / (epoch + 1) * (recipe.epochs - epoch - 1)
        log.info(
            "epoch %d/%d  loss %.4f  val error %.4f  %.0f img/s  %.1fs left",
            epoch + 1,
            recipe.epochs,
            train_loss,
            val_error,
            images / dt,
            left,
        )
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}", val_err=f"{val_error:.3f}")
        if resume_path:
            save_checkpoint(
                resume_path,
                {
                    "epoch": epoch + 1,
                    "model": model.state_dict(),
                    "optim": opt.state_dict(),
                    "history": history,
                    "elapsed": elapsed,
                    "resume_key": resume_key,
                },
            )
    if bar:
        bar.close()
    test_error = evaluate(forward, data, data.test, rt)
    seen = sum(h["images_per_s"] * h["seconds"] for h in history)
    last = history[-1]
    return FitResult(
        model, history, last["train_loss"], last["val_error"], test_error, elapsed, seen / elapsed if elapsed else 0.0
    )
