"""Data-parallel training in one job: the process group, who writes, and the few collectives the loop needs.

A job becomes data-parallel by being started several times at once, one process per GPU:

- ``torchrun --standalone --nproc-per-node N -m prunestudy.cli train ...`` on one machine (torchrun sets
  ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``), or torchrun on every
  node of a multi-node allocation with a shared rendezvous;
- ``srun --ntasks-per-node N ... prunestudy train ...`` under SLURM without torchrun (the workflow's launch of a
  job over ``gpu.nodes`` nodes; ``tests/test_slurm.py`` runs a two-task step for real): the rank,
  the world size and the local rank then come from ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` and
  ``SLURM_LOCALID``. The world size is the *step's* task count on purpose: a batch script run with
  ``--ntasks 4`` but not through ``srun`` also sees ``SLURM_NTASKS=4`` and ``SLURM_PROCID=0``, and would
  wait for three processes that never come. ``MASTER_ADDR`` defaults to the step's first node (``127.0.0.1``
  on one node) and ``MASTER_PORT`` to one derived from the job id; export both where that does not suit.

Without any of these (``WORLD_SIZE`` unset, or 1) every function here is a no-op for one process, and
training is bit for bit what it was. The backend is NCCL on CUDA and gloo on the CPU (which the tests use).

Rank 0 is the main process: it alone writes resume state and outputs, while the others wait at a
:func:`barrier`. Every rank holds the same weights (DDP averages the gradients), so rank 0's files are
the job's.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from prunestudy.training.data import Shard

log = logging.getLogger(__name__)
TIMEOUT = timedelta(minutes=30)  # the longest a rank waits in one collective: rank 0 writes large checkpoints


@dataclass(frozen=True)
class Launch:
    """How this process was started: its rank among ``world_size`` and on its node, and where rank 0 listens."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    master_addr: str | None = None
    master_port: str | None = None
    launcher: str = "single"  # torchrun, slurm or single


def from_env(env: Mapping[str, str] | None = None) -> Launch:
    """The launch described by the environment: torchrun's variables first, then an ``srun`` step's."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" in env:
        return Launch(
            int(env.get("RANK", 0)),
            int(env["WORLD_SIZE"]),
            int(env.get("LOCAL_RANK", 0)),
            env.get("MASTER_ADDR"),
            env.get("MASTER_PORT"),
            "torchrun",
        )
    if "SLURM_STEP_NUM_TASKS" in env and int(env["SLURM_STEP_NUM_TASKS"]) > 1:
        return Launch(
            int(env["SLURM_PROCID"]),
            int(env["SLURM_STEP_NUM_TASKS"]),
            int(env.get("SLURM_LOCALID", 0)),
            env.get("MASTER_ADDR") or _slurm_master(env),
            env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID", 0)) % 20000),
            "slurm",
        )
    return Launch()


def _slurm_master(env: Mapping[str, str]) -> str:
    """The step's first node (rank 0 runs there): ``127.0.0.1`` on one node, else the first host of the list."""
    if int(env.get("SLURM_STEP_NUM_NODES", env.get("SLURM_NNODES", 1))) == 1:
        return "127.0.0.1"
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST", "")
    return first_host(nodes)


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: ``gpu[07-09,12],cpu1`` -> ``gpu07``."""
    m = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not m:
        raise RuntimeError(f"cannot read a host from SLURM's node list {nodelist!r}; export MASTER_ADDR")
    prefix, ranges = m.groups()
    return prefix if ranges is None else prefix + re.split(r"[-,]", ranges)[0]


def gpu_index(launch: Launch, visible: int) -> int:
    """The rank's GPU among the ``visible`` ones: its local rank's, or the only one where the launcher
    gave each task its own (``srun --gpus-per-task 1`` sets ``CUDA_VISIBLE_DEVICES`` per task)."""
    if visible == 1:
        return 0
    if launch.local_rank >= visible:
        raise RuntimeError(
            f"local rank {launch.local_rank} has no GPU: this node shows {visible}; start at most that many "
            "processes per node (torchrun --nproc-per-node, SLURM --ntasks-per-node)"
        )
    return launch.local_rank


def setup(device: str = "auto", env: Mapping[str, str] | None = None) -> Launch:
    """Join the job's process group (NCCL on CUDA, gloo on the CPU); nothing for a single process.

    ``device`` is the job's (``auto``, ``cpu``, ``cuda``). On CUDA the rank's device is :func:`gpu_index`'s.
    """
    launch = from_env(env)
    if launch.world_size == 1 or dist.is_initialized():
        return launch
    if not launch.master_addr or not launch.master_port:
        raise RuntimeError("a data-parallel job needs MASTER_ADDR and MASTER_PORT (torchrun sets them)")
    os.environ.setdefault("MASTER_ADDR", launch.master_addr)
    os.environ.setdefault("MASTER_PORT", launch.master_port)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    gpu = torch.device("cuda", gpu_index(launch, torch.cuda.device_count())) if cuda else None
    if gpu is not None:
        torch.cuda.set_device(gpu)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method="env://",
        rank=launch.rank,
        world_size=launch.world_size,
        timeout=TIMEOUT,
        device_id=gpu,
    )
    log.info(
        "rank %d of %d (%s), local rank %d, rendezvous %s:%s, %s",
        launch.rank,
        launch.world_size,
        launch.launcher,
        launch.local_rank,
        launch.master_addr,
        launch.master_port,
        gpu or "cpu",
    )
    return launch


def teardown() -> None:
    """Leave the process group (after a last barrier, so no rank leaves while rank 0 still writes)."""
    if dist.is_initialized():
        barrier()
        dist.destroy_process_group()


@contextmanager
def session(device: str = "auto") -> Iterator[Launch]:
    """A job's process group for the length of a ``with`` block (a no-op for one process).

    On success every rank waits for the others before leaving (rank 0 may still be writing); on an
    error it leaves at once, as waiting for ranks that may be stuck would only delay the failure.
    """
    launch = setup(device)
    try:
        yield launch
    except BaseException:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    teardown()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return rank() == 0


def shard() -> Shard:
    """This process's part of every global batch.

    Refuses a process started as one of several whose job never joined the group: each would train
    the whole model alone and all of them would write the same outputs.
    """
    if not dist.is_initialized() and (launch := from_env()).world_size > 1:
        raise RuntimeError(
            f"this process is rank {launch.rank} of {launch.world_size} ({launch.launcher}) but joined no "
            "process group: the job must run inside distributed.session() (or call distributed.setup())"
        )
    return Shard(rank(), world_size())


def barrier() -> None:
    """Wait until every rank is here (a no-op for one process)."""
    if not dist.is_initialized():
        return
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks, in place (itself for one process)."""
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_buffers(model: nn.Module) -> None:
    """Rank 0's buffers (BN running statistics) on every rank.

    With per-rank BN each rank updates its running statistics from its own shard; DDP copies rank 0's
    to the others only at the start of the next training forward. Evaluating (or saving) after an epoch
    must see the model rank 0 saves, on every rank.
    """
    if dist.is_initialized():
        for b in model.buffers():
            dist.broadcast(b, src=0)


def check_same(value: int, what: str) -> None:
    """Refuse to go on when the ranks disagree on ``value`` (e.g. the epoch they resume from)."""
    if not dist.is_initialized():
        return
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    lo = torch.tensor([value], device=device)
    hi = lo.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if lo.item() != hi.item():
        raise RuntimeError(
            f"the ranks disagree on {what} ({lo.item()} to {hi.item()}); do all nodes see the same files?"
        )
