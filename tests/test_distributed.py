"""Data-parallel training on the CPU (gloo): two real processes started by torchrun, held to one process.

The two-process runs are this file run as a script under ``python -m torch.distributed.run`` (torchrun);
every rank saves what it trained, so the test can also check that the replicas agree. Two processes on
a two-core machine take a few seconds to start; the runs are shared between the tests of a module.

BatchNorm is per rank (see :mod:`prunestudy.training.loop`), so the single-process reference it is held
to computes BN statistics per half batch and keeps the first half's running statistics, as DDP does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from prunestudy.arch import WRNSpec
from prunestudy.io.artifacts import load_checkpoint
from prunestudy.methods.base import TrainHooks
from prunestudy.pruning import masks
from prunestudy.training import distributed
from prunestudy.training.data import Augment, Batch, InMemory, Shard, draw_batches, epoch_batches, load
from prunestudy.training.loop import (
    ResumeMismatchError,
    derive_seed,
    error_rate,
    evaluate,
    fit,
    make_optimizer,
)
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
SPEC = WRNSpec(10, (4, 6, 8, 10), (3, 4, 5), 10, 1, 8)
RECIPE = Recipe(epochs=3, batch_size=64, lr=0.05, milestones=(2,))
AUG = Augment(pad=1, pad_mode="constant", flip=True)
SEED, KEY, WORLD = 5, "test", 2
MASKED = "blocks.0.conv1.weight"  # a conv's weights: a mask's hooks run on every rank


def _digits():
    return load("digits", val=0.15, test=0.25)


def _mask(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Half of a conv's weights pruned, drawn from a fixed generator."""
    shape = dict(model.named_parameters())[MASKED].shape
    return {MASKED: torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.5}


def _hooks(kill_at: int | None = None):
    """The mask's hooks, and (rank 1, at step ``kill_at``) a SIGKILL mid-epoch."""

    def make(model, opt) -> TrainHooks:
        h = masks.hooks(model, opt, _mask(model))
        if kill_at is not None and distributed.rank() == 1:
            steps = []

            def die() -> None:
                steps.append(1)
                if len(steps) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

            h.after_step.append(die)
        return h

    return make


def _worker(out: Path, kill_at: int | None) -> None:
    """One rank of the two-process job: train, then save this rank's result (rank 0 also wrote resume state)."""
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    with distributed.session("cpu"):
        res = fit(
            SPEC,
            _digits(),
            RECIPE,
            AUG,
            seed=SEED,
            rt=Runtime.pick("cpu"),
            resume_path=out / "resume.pt",
            resume_key=KEY,
            hooks=_hooks(kill_at),
        )
        result = {"state": res.model.state_dict(), "history": _losses(res.history), "test_error": res.test_error}
        torch.save(result, out / f"rank{distributed.rank()}.pt")


def _losses(history: list[dict]) -> list[tuple[float, float]]:
    return [(h["train_loss"], h["val_error"]) for h in history]


def _torchrun(out: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={WORLD}", __file__]
    cmd += [str(out), *([str(kill_at)] if kill_at is not None else [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def _result(out: Path, rank: int = 0) -> dict:
    return torch.load(out / f"rank{rank}.pt", weights_only=True)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    proc = _torchrun(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _reference(data, world: int = WORLD) -> dict:
    """One process, written out: each global batch's halves go through the network separately (per-rank BN,
    the first half's running statistics kept), their mean losses are averaged for one backward and one step."""
    rt = Runtime.pick("cpu")
    torch.manual_seed(derive_seed(SEED, "init"))
    model = rt.prepare(SPEC.build()).train()
    opt = make_optimizer(model, RECIPE)
    hooks = _hooks()(model, opt)
    history = []
    for epoch in range(RECIPE.epochs):
        opt.lr = RECIPE.lr_at(epoch)
        total, n = 0.0, 0
        for x, y in InMemory(data, AUG).train_batches(epoch, RECIPE.batch_size, SEED, "cpu"):
            opt.zero_grad()
            for r, (xs, ys) in enumerate(zip(x.chunk(world), y.chunk(world), strict=True)):
                kept = [b.clone() for b in model.buffers()]
                loss = F.cross_entropy(model(xs), ys)
                (loss / world).backward()
                total += loss.item() / world
                if r:  # rank 0's running statistics are the ones DDP keeps
                    for b, k in zip(model.buffers(), kept, strict=True):
                        b.copy_(k)
            for f in hooks.after_backward:
                f()
            opt.step()
            for f in hooks.after_step:
                f()
            n += 1
        history.append((total / n, evaluate(model, data, data.val, rt)))
    return {"state": model.state_dict(), "history": history, "test_error": evaluate(model, data, data.test, rt)}


def test_two_processes_train_what_one_process_trains_with_the_same_global_batches(ddp_run):
    """Tolerance: DDP averages the two half-batch gradients by a sum over the ranks where the reference
    accumulates them in backward, and the epoch loss is summed in float32 per rank where the reference
    sums float64 halves; both agree to float32 rounding (~1e-6 relative), not bit for bit by contract.
    The error rates are counts of argmax hits, so they must agree exactly."""
    ref, got = _reference(_digits()), _result(ddp_run)
    for (loss, val), (ref_loss, ref_val) in zip(got["history"], ref["history"], strict=True):
        assert loss == pytest.approx(ref_loss, rel=1e-6) and val == ref_val
    assert got["test_error"] == ref["test_error"]
    for name, w in ref["state"].items():
        torch.testing.assert_close(got["state"][name], w, rtol=1e-5, atol=1e-6, msg=name)
    assert (got["state"][MASKED][~_mask_like(got["state"])] == 0).all()  # the mask held on rank 0


def _mask_like(state: dict) -> torch.Tensor:
    return torch.rand(state[MASKED].shape, generator=torch.Generator().manual_seed(0)) < 0.5


def test_every_rank_ends_with_the_same_weights_and_statistics(ddp_run):
    a, b = _result(ddp_run, 0), _result(ddp_run, 1)
    assert a["history"] == b["history"] and a["test_error"] == b["test_error"]
    for name, w in a["state"].items():
        assert torch.equal(w, b["state"][name]), name  # buffers too: rank 0's are broadcast before evaluation


def test_a_killed_two_process_job_resumes_to_the_uninterrupted_result(ddp_run, tmp_path):
    steps_per_epoch = len(_digits().train) // RECIPE.batch_size
    killed = _torchrun(tmp_path, kill_at=steps_per_epoch + 3)  # rank 1 dies in the second epoch
    assert killed.returncode != 0 and not (tmp_path / "rank0.pt").exists()
    assert load_checkpoint(tmp_path / "resume.pt")["epoch"] == 1
    resumed = _torchrun(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from epoch 1 of 3" in resumed.stderr
    a, b = _result(ddp_run), _result(tmp_path)
    assert a["history"] == b["history"] and a["test_error"] == b["test_error"]
    for name, w in a["state"].items():
        assert torch.equal(w, b["state"][name]), name


def test_resume_state_of_two_processes_is_refused_by_one(ddp_run, digits):
    with pytest.raises(ResumeMismatchError, match="written by a run on 2 process"):
        fit(
            SPEC,
            digits,
            RECIPE,
            AUG,
            seed=SEED,
            rt=Runtime.pick("cpu"),
            resume_path=ddp_run / "resume.pt",
            resume_key=KEY,
        )


def test_one_process_fit_is_the_loop_it_always_was(digits):
    """The in-memory path, bit for bit: the loop as it was written before data sources and DDP, inline."""
    rt, recipe = Runtime.pick("cpu"), Recipe(epochs=2, batch_size=64, lr=0.05, milestones=(1,))
    res = fit(SPEC, digits, recipe, AUG, seed=SEED, rt=rt, hooks=_hooks())
    torch.manual_seed(derive_seed(SEED, "init"))
    model = rt.prepare(SPEC.build())
    opt = make_optimizer(model, recipe)
    hooks = _hooks()(model, opt)
    model.train()
    for epoch, h in enumerate(res.history):
        opt.lr = recipe.lr_at(epoch)
        gen = torch.Generator().manual_seed(derive_seed(SEED, "epoch", epoch))
        batches = draw_batches(epoch_batches(len(digits.train), recipe.batch_size, gen), AUG, gen, rt.device)
        loss_sum = torch.zeros(())
        for batch in batches:
            loss = F.cross_entropy(model(rt.batch(digits, digits.train, batch, AUG)), digits.train.y[batch.idx])
            opt.zero_grad()
            loss.backward()
            for f in hooks.after_backward:
                f()
            opt.step()
            for f in hooks.after_step:
                f()
            loss_sum += loss.detach()
        assert h["train_loss"] == loss_sum.item() / len(batches)
        assert h["val_error"] == _old_evaluate(model, digits, digits.val, rt)
    assert res.test_error == _old_evaluate(model, digits, digits.test, rt)
    for (name, w), v in zip(res.model.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(w, v), name


@torch.no_grad()
def _old_evaluate(model, data, split, rt) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long)
    for idx in torch.arange(len(split)).split(1000):
        correct += (model(rt.batch(data, split, Batch(idx))).argmax(1) == split.y[idx]).sum()
    model.train()
    return 1.0 - correct.item() / len(split)


def test_shards_split_every_global_batch_and_every_evaluation_split(digits):
    whole = InMemory(digits, AUG)
    parts = [InMemory(digits, AUG).train_batches(1, 64, SEED, "cpu", Shard(r, 2)) for r in range(2)]
    for (x, y), (x0, y0), (x1, y1) in zip(whole.train_batches(1, 64, SEED, "cpu"), *parts, strict=True):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
    counted = [whole.eval_batches("val", 50, "cpu", Shard(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([y for part in counted for _, y in part]), digits.val.y)
    rt = Runtime.pick("cpu")
    model = rt.prepare(SPEC.build())
    assert error_rate(model, whole.eval_batches("val", 50, "cpu"), rt) == evaluate(model, digits, digits.val, rt)


def test_a_global_batch_that_does_not_split_over_the_processes_is_refused():
    with pytest.raises(ValueError, match="batch of 64 does not split evenly over 3 processes"):
        Shard(1, 3).rows(64)
    assert Shard(1, 2).rows(64) == slice(32, 64) and Shard(0, 1).take(torch.arange(5)).tolist() == list(range(5))


def test_the_launch_comes_from_torchrun_or_an_srun_step_and_defaults_to_one_process():
    assert distributed.from_env({}) == distributed.Launch()
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29500"}
    assert distributed.from_env(torchrun) == distributed.Launch(3, 4, 1, "h", "29500", "torchrun")
    step = {"SLURM_PROCID": "5", "SLURM_STEP_NUM_TASKS": "8", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "1234"}
    step |= {"SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_NTASKS": "8"}
    assert distributed.from_env(step) == distributed.Launch(5, 8, 1, "gpu07", "21234", "slurm")
    batch_script = {"SLURM_PROCID": "0", "SLURM_NTASKS": "8", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "1234"}
    assert distributed.from_env(batch_script).world_size == 1  # not an srun step: one process
    one_node = step | {"SLURM_STEP_NUM_NODES": "1"}
    assert distributed.from_env(one_node).master_addr == "127.0.0.1"
    assert distributed.first_host("node12,gpu[3,5]") == "node12" and distributed.first_host("a[009-011]") == "a009"
    assert [distributed.gpu_index(distributed.Launch(1, 2, 1), n) for n in (1, 2)] == [0, 1]  # per-task GPUs
    with pytest.raises(RuntimeError, match="local rank 2 has no GPU"):
        distributed.gpu_index(distributed.Launch(2, 4, 2), 2)
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    distributed.barrier()  # no-ops without a process group
    assert distributed.all_sum(torch.ones(2)).tolist() == [1.0, 1.0]


def test_a_rank_that_joined_no_process_group_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match=r"rank 1 of 2 \(torchrun\) but joined no process group"):
        distributed.shard()


if __name__ == "__main__":  # one rank of a two-process job (see _torchrun)
    _worker(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else None)
