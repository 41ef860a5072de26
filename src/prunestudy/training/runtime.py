"""Where and how a job computes: the device, bf16 autocast, torch.compile, deterministic CUDA kernels.

Every job picks one :class:`Runtime`; it also describes the hardware and software that shaped the numbers,
for every metrics file.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from prunestudy.training.data import Augment, Batch, Dataset, Split, prepare

if TYPE_CHECKING:
    from prunestudy.training import gpus


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
        held = _claim_gpu(jobs_per_gpu, alone)
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
        return prepare(data, split, batch, aug)


_HELD: list = []  # GPU claims of this process (see prunestudy.training.gpus)


def _claim_gpu(jobs_per_gpu: int, alone: bool) -> gpus.Claim:
    """One process's GPU. A rank of a data-parallel job takes its own device whole (every slot, waiting
    for their holders), so no other job of the workflow shares it and two ranks never share one; a lone
    job takes a free slot of any device (:func:`prunestudy.training.gpus.claim`)."""
    from prunestudy.training import distributed, gpus

    devices = gpus.visible_devices()
    launch = distributed.from_env()
    if launch.world_size == 1:
        return gpus.claim(devices, jobs_per_gpu, exclusive=alone)
    index = distributed.gpu_index(launch, len(devices))
    held = gpus.claim([devices[index]], jobs_per_gpu, exclusive=True)
    return gpus.Claim(index, held.slots, held.files)


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
