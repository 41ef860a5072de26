"""Which GPU a job runs on: a free slot on a device, claimed with a file lock the OS drops when the job ends.

Snakemake limits how many GPU jobs run at once (``--resources gpu=N``) but does not say which device
each should use, so every job would land on GPU 0. Each device gets ``per_device`` slots, one lock file
each; a job takes the first free slot, visiting slot 0 of every device before slot 1 of any, so jobs
spread over devices before they share one. ``flock`` locks belong to the process: a killed job frees
its slot without cleanup. A job that must run alone on a device (latency) takes all of its slots,
waiting for their holders to finish. Devices are named by UUID, so jobs that see different devices
as ``cuda:0`` (SLURM's ``CUDA_VISIBLE_DEVICES``) never block one another.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

log = logging.getLogger("prunestudy")

LOCK_DIR_ENV = "PRUNESTUDY_GPU_LOCKS"


def lock_dir() -> Path:
    """Where the slot locks live: ``$PRUNESTUDY_GPU_LOCKS``, else one folder per user in the temp dir."""
    default = Path(tempfile.gettempdir()) / f"prunestudy-gpu-locks-{os.getuid()}"
    return Path(os.environ.get(LOCK_DIR_ENV, default))


@dataclass
class Claim:
    """A held claim: the device's index among those visible, and the locks that hold it."""

    index: int
    slots: list[int]
    files: list[IO] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for f in self.files:
            f.close()  # closing drops the flock
        self.files.clear()


def _lock(path: Path, block: bool) -> IO | None:
    f = open(path, "a")  # noqa: SIM115 - held for the life of the claim
    try:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        f.close()
        return None
    return f


def _slot(root: Path, device: str, slot: int) -> Path:
    return root / f"{device}.slot{slot}.lock"


def claim(devices: Sequence[str], per_device: int, *, exclusive: bool = False, poll_s: float = 0.5) -> Claim:
    """Claim one slot (or, ``exclusive``, every slot of one device) among ``devices`` (their UUIDs).

    Waits while none is free; Snakemake's ``gpu`` resource normally keeps that wait short.
    """
    if not devices:
        raise RuntimeError("no CUDA device is visible to claim")
    if per_device < 1:
        raise ValueError(f"jobs_per_gpu must be at least 1, got {per_device}")
    root = lock_dir()
    root.mkdir(parents=True, exist_ok=True)
    if exclusive:
        return _claim_device(root, devices, per_device)
    waited = False
    while True:
        for slot in range(per_device):
            for index, device in enumerate(devices):
                f = _lock(_slot(root, device, slot), block=False)
                if f:
                    return Claim(index, [slot], [f])
        if not waited:
            log.info("every GPU slot is taken (%d per device); waiting for one", per_device)
            waited = True
        time.sleep(poll_s)


def _claim_device(root: Path, devices: Sequence[str], per_device: int) -> Claim:
    """Every slot of the least busy device, each taken as soon as its holder ends (so no new job takes it)."""
    busy = [sum(_is_held(_slot(root, d, s)) for s in range(per_device)) for d in devices]
    index = busy.index(min(busy))
    if busy[index]:
        log.info("waiting for %d job(s) to leave GPU %d before running alone on it", busy[index], index)
    files = [_lock(_slot(root, devices[index], s), block=True) for s in range(per_device)]
    return Claim(index, list(range(per_device)), files)


def _is_held(path: Path) -> bool:
    f = _lock(path, block=False)
    if f is None:
        return True
    f.close()
    return False


def visible_devices() -> list[str]:
    """UUIDs of the CUDA devices this process sees, in index order."""
    import torch

    return [str(torch.cuda.get_device_properties(i).uuid) for i in range(torch.cuda.device_count())]
