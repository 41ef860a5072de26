"""Recipes, the training step, evaluation and a resumable training run.

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
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch import ArchSpec
from prunestudy.artifacts import load_resume, save_checkpoint
from prunestudy.data import Augment, Dataset, Split, augment_batch, epoch_batches
from prunestudy.methods.base import TrainHooks
from prunestudy.optim import SGD
from prunestudy.recipe import Recipe

log = logging.getLogger("prunestudy")


class NonFiniteLossError(RuntimeError):
    """Training diverged; continuing would only waste compute."""


@dataclass(frozen=True)
class Runtime:
    """Where and how to run: CUDA gets bf16 autocast; every device gets channels_last.

    The layout is fixed rather than left to the input's strides (which made digits NHWC and CIFAR
    NCHW on the CPU): NHWC is 5-15% faster with oneDNN on the CPU and is what tensor cores want.
    """

    device: torch.device

    @classmethod
    def pick(cls, requested: str = "auto") -> Runtime:
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        if requested == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device: cuda was requested but no CUDA device is available")
        return cls(torch.device(requested))

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else nullcontext()

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last)

    def batch(
        self,
        data: Dataset,
        split: Split,
        idx: torch.Tensor,
        aug: Augment | None = None,
        gen: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Gather ``idx``, augment the raw pixels (when ``aug``), normalise, and lay out for the device."""
        raw = split.x[idx]
        x = data.normalize(augment_batch(raw, aug, gen) if aug else raw)
        return x.contiguous(memory_format=torch.channels_last)


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from a run's identity, e.g. ``derive_seed(seed, "init", arm)``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def make_optimizer(model: nn.Module, recipe: Recipe, no_decay: Callable[[str], bool] | None = None) -> SGD:
    """SGD over every parameter; those named by ``no_decay`` get no weight decay (e.g. SSS's block factors)."""
    params = list(model.named_parameters())
    groups = [{"params": [p for n, p in params if not (no_decay and no_decay(n))], "weight_decay": recipe.weight_decay}]
    if no_decay:
        groups.append({"params": [p for n, p in params if no_decay(n)], "weight_decay": 0.0})
    return SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)


def train_step(
    model: nn.Module,
    opt: SGD,
    data: Dataset,
    rt: Runtime,
    idx: torch.Tensor,
    aug: Augment,
    gen: torch.Generator,
    hooks: TrainHooks | None = None,
) -> torch.Tensor:
    """One SGD step on the batch ``idx`` of the training split; returns the detached loss."""
    x = rt.batch(data, data.train, idx, aug, gen)
    with rt.autocast():
        loss = F.cross_entropy(model(x), data.train.y[idx])
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
            correct += (model(rt.batch(data, split, idx)).argmax(1) == split.y[idx]).sum()
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
        batches = epoch_batches(len(data.train), recipe.batch_size, gen)
        loss_sum = torch.zeros((), device=rt.device)
        for idx in batches:
            loss_sum += train_step(model, opt, data, rt, idx.to(rt.device), aug, gen, step_hooks)
        train_loss = loss_sum.item() / len(batches)
        check_finite(train_loss, f"at epoch {epoch + 1}")
        val_error = evaluate(model, data, data.val, rt)
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
    test_error = evaluate(model, data, data.test, rt)
    seen = sum(h["images_per_s"] * h["seconds"] for h in history)
    last = history[-1]
    return FitResult(
        model, history, last["train_loss"], last["val_error"], test_error, elapsed, seen / elapsed if elapsed else 0.0
    )


@torch.no_grad()
def measure_latency(
    model: nn.Module, spec: ArchSpec, rt: Runtime, batch_size: int, repeats: int = 20, warmup: int = 5
) -> float:
    """Median milliseconds per forward pass of one batch, in eval mode, after warm-up."""
    model.eval()
    x = torch.randn(batch_size, spec.in_channels, spec.image_size, spec.image_size, device=rt.device)
    x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(warmup + repeats):
        if rt.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with rt.autocast():
            model(x)
        if rt.cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return float(sorted(times)[len(times) // 2])
