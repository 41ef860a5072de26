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
from prunestudy.data import Augment, Batch, Dataset, Split, apply_augment, draw_batches, epoch_batches
from prunestudy.methods.base import TrainHooks
from prunestudy.optim import SGD
from prunestudy.recipe import Recipe

log = logging.getLogger("prunestudy")


class NonFiniteLossError(RuntimeError):
    """Training diverged; continuing would only waste compute."""


@dataclass(frozen=True)
class Runtime:
    """Where and how to run: CUDA gets bf16 autocast and (for fixed shapes) torch.compile; every
    device gets channels_last.

    The layout is fixed rather than left to the input's strides (which made digits NHWC and CIFAR
    NCHW on the CPU): NHWC is 5-15% faster with oneDNN on the CPU and is what tensor cores want.
    """

    device: torch.device
    bf16: bool = False
    compile: bool = False

    @classmethod
    def pick(
        cls,
        requested: str = "auto",
        jobs_per_gpu: int = 1,
        compile: str = "auto",
        *,
        fixed_shape: bool = False,
        alone: bool = False,
    ) -> Runtime:
        """The job's runtime. On CUDA it claims a GPU slot (``jobs_per_gpu`` jobs share a device;
        ``alone`` takes every slot of one) and makes CUDA deterministic; ``fixed_shape`` jobs compile
        their network unless ``compile`` is ``"false"`` (``"auto"``: on CUDA, the only place it pays)."""
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        if requested == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device: cuda was requested but no CUDA device is available")
        if requested == "cpu":
            return cls(torch.device("cpu"))
        from prunestudy import gpus

        held = gpus.claim(gpus.visible_devices(), jobs_per_gpu, exclusive=alone)
        _HELD.append(held)  # held until the process exits
        torch.cuda.set_device(held.index)
        deterministic_cuda()
        return cls(torch.device("cuda", held.index), bf16=True, compile=fixed_shape and compile != "false")

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    def compiled(self, model: nn.Module) -> nn.Module:
        """What runs the forward pass: ``model`` compiled (one graph per train/eval mode) or itself."""
        return torch.compile(model) if self.compile else model

    def describe(self) -> dict:
        """The hardware and software that shaped the numbers, for every metrics file."""
        info = {
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "bf16": self.bf16,
            "compile": self.compile,
        }
        if self.cuda:
            info |= {
                "name": torch.cuda.get_device_name(self.device),
                "driver": _nvidia_driver(),
                "cuda": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(),
            }
        else:
            info["name"] = _cpu_name()
        return info

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last)

    def batch(self, data: Dataset, split: Split, batch: Batch, aug: Augment | None = None) -> torch.Tensor:
        """Gather the batch, augment the raw pixels (when it has draws), normalise, and lay out for the device."""
        raw = split.x[batch.idx]
        if aug is not None and batch.shift is not None:
            raw = apply_augment(raw, aug, batch.shift, batch.flip)
        return data.normalize(raw).contiguous(memory_format=torch.channels_last)


_HELD: list = []  # GPU claims of this process (see prunestudy.gpus)


def deterministic_cuda() -> None:
    """Deterministic cuDNN and cuBLAS kernels wherever PyTorch has them, so a resumed run on CUDA can
    match an uninterrupted one (the networks pool with a mean, whose backward is deterministic, not
    ``adaptive_avg_pool2d``, whose CUDA backward is not). An op without a deterministic kernel warns
    rather than stops the job: PyTorch lists NLLLoss on CUDA among them, which every training step
    uses, and no GPU was at hand to show that its 1-D case is exempt (``benchmarks/bench_gpu.py``
    reports whether two identical runs agree bit for bit)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def _nvidia_driver() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.split("\n")[0].strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


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
