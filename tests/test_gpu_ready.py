"""The GPU path, checked on the CPU: no host transfer or sync inside a step, fp32 saliency under bf16,
deterministic pooling, GPU slots shared by concurrent jobs, compiled fixed-shape training, and the
GPU benchmark's tiny mode. Where CUDA is present, the step is also run under sync debug mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from prunestudy.arch import build_spec, wrn
from prunestudy.methods import method
from prunestudy.methods.fisher import Fisher
from prunestudy.methods.selectors import one_at_a_time as choose_channel
from prunestudy.pruning import masks
from prunestudy.training import data as data_mod
from prunestudy.training import gpus
from prunestudy.training.data import Augment, draw_batches, epoch_batches
from prunestudy.training.loop import fit, make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime
from prunestudy.training.transfers import Transfers

ROOT = Path(__file__).resolve().parents[1]
AUG = Augment(pad=2, pad_mode="constant", flip=True)


def _meta_setup(digits, options):
    rt = Runtime(torch.device("meta"))
    spec = build_spec(options, num_classes=10, in_channels=1, image_size=8)
    model = rt.prepare(spec.build()).train()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=32, lr=0.1))
    gen = torch.Generator().manual_seed(0)
    batches = draw_batches(epoch_batches(len(digits.train), 32, gen), AUG, gen, "meta")
    return rt, spec, model, opt, batches, digits.to("meta")


def _hooks(kind, model, opt, spec):
    if kind == "fisher":
        return Fisher.watch(model, spec).hooks
    if kind == "mask":
        mask = {n: torch.ones_like(p) for n, p in model.named_parameters() if p.dim() == 4}
        return masks.hooks(model, opt, mask)
    m = method(kind)
    return m.hooks(model, opt, spec, m.regulariser(m.params(), 0.5))


@pytest.mark.parametrize(
    "options,kind",
    [
        ({"family": "wrn", "depth": 10, "width": 1}, None),
        ({"family": "wrn", "depth": 10, "width": 1}, "fisher"),
        ({"family": "wrn", "depth": 10, "width": 1}, "mask"),
        ({"family": "vgg", "cfg": [8, "M", 16], "hidden": 0}, "slimming"),
        ({"family": "resnet", "depth": 8}, "sss"),
    ],
)
def test_a_training_step_makes_no_host_transfer_and_no_sync(digits, options, kind):
    rt, spec, model, opt, batches, on_device = _meta_setup(digits, options)
    hooks = _hooks(kind, model, opt, spec) if kind else None
    train_step(model, opt, on_device, rt, batches[0], AUG, hooks)  # the first step creates momentum
    with Transfers() as seen:
        for batch in batches[1:3]:
            train_step(model, opt, on_device, rt, batch, AUG, hooks)
    assert seen.copies == [] and seen.syncs == 0
    with Transfers() as control:  # the counter does see a copy
        torch.ones(3).to("meta")
    assert control.copies


def test_an_epochs_draws_move_to_the_device_in_one_copy(digits):
    gen = torch.Generator().manual_seed(0)
    order = epoch_batches(len(digits.train), 32, gen)
    with Transfers() as seen:
        batches = draw_batches(order, AUG, gen, "meta")
    assert len(seen.copies) == 1 and len(batches) == len(order)


def test_drawn_batches_augment_exactly_as_per_batch_draws():
    """The draws come off the generator in the order the per-batch step used: results stay bit-identical."""
    x = torch.randint(0, 256, (40, 3, 6, 6), dtype=torch.uint8)
    order = [torch.arange(0, 20), torch.arange(20, 40)]
    per_batch = torch.Generator().manual_seed(7)
    expected = []
    for i in order:  # the step used to draw each batch's crop rows, crop columns and flips in turn
        dy, dx, flip = data_mod._draw(len(i), AUG, per_batch)
        expected.append(data_mod.apply_augment(x[i], AUG, torch.stack([dy, dx]), flip.bool()))
    drawn = draw_batches(order, AUG, torch.Generator().manual_seed(7))
    got = [data_mod.apply_augment(x[b.idx], AUG, b.shift, b.flip) for b in drawn]
    assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_step_passes_sync_debug_mode(digits):  # pragma: no cover - GPU only
    rt = Runtime(torch.device("cuda"), bf16=True)
    spec = wrn(10, 1, in_channels=1, image_size=8)
    model = rt.prepare(spec.build()).train()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=32, lr=0.1))
    gen = torch.Generator().manual_seed(0)
    batches = draw_batches(epoch_batches(len(digits.train), 32, gen), AUG, gen, "cuda")
    on_device, hooks = digits.to("cuda"), Fisher.watch(model, spec).hooks
    train_step(model, opt, on_device, rt, batches[0], AUG, hooks)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in batches[1:4]:
            train_step(model, opt, on_device, rt, batch, AUG, hooks)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _saliency(spec, model, x, y, rt):
    capture = Fisher.watch(model, spec)
    for i in range(0, len(y), 64):
        with rt.autocast():
            loss = torch.nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64])
        loss.backward()
        capture.step()
    capture.close()
    return capture.scores()


def test_saliency_under_bf16_autocast_is_fp32_and_ranks_as_fp32(digits):
    torch.manual_seed(0)
    spec = wrn(10, 2, in_channels=1, image_size=8)
    model = spec.build().train()
    x, y = digits.normalize(digits.train.x[:512]), digits.train.y[:512]
    fp32 = _saliency(spec, model, x, y, Runtime(torch.device("cpu")))
    bf16 = _saliency(spec, model, x, y, Runtime(torch.device("cpu"), bf16=True))
    assert all(v.dtype == torch.float32 for v in bf16.values())
    assert choose_channel(bf16, spec)[:2] == choose_channel(fp32, spec)[:2]
    a, b = torch.cat(list(fp32.values())), torch.cat(list(bf16.values()))
    ranks = torch.stack([a.argsort().argsort(), b.argsort().argsort()]).double()
    assert torch.corrcoef(ranks)[0, 1] > 0.99  # Spearman's rho of the whole ranking
    torch.testing.assert_close(b, a, rtol=0.1, atol=0)


@pytest.mark.parametrize(
    "options",
    [
        {"family": "wrn", "depth": 10, "width": 1},
        {"family": "vgg", "cfg": [8, "M", 16], "hidden": 0},
        {"family": "resnet", "depth": 8},
        {"family": "preresnet", "depth": 11, "bottleneck": True},
        {"family": "densenet", "depth": 10, "growth": 4},
    ],
)
def test_no_network_pools_with_an_op_whose_cuda_backward_is_nondeterministic(options):
    spec = build_spec(options, num_classes=10, in_channels=1, image_size=8)
    model = spec.build().train()

    seen: set[str] = set()

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.__name__)
            return func(*args, **(kwargs or {}))

    with Ops():
        model(torch.randn(4, 1, 8, 8)).sum().backward()
    assert "convolution_backward" in {op.split(".")[0] for op in seen}  # the mode saw the backward
    assert not {op for op in seen if "adaptive" in op}, seen


def test_fixed_shape_training_runs_through_the_compiled_module(digits, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m: compiled.append(m) or m)
    spec = wrn(10, 1, in_channels=1, image_size=8)
    rt = Runtime(torch.device("cpu"), compile=True)
    result = fit(spec, digits, Recipe(epochs=1, batch_size=64, lr=0.05), Augment(), seed=0, rt=rt)
    assert compiled == [result.model]
    assert not any(k.startswith("_orig_mod") for k in result.model.state_dict())


def test_cpu_runtime_never_compiles_or_claims_a_gpu():
    rt = Runtime.pick("cpu", 2, "true", fixed_shape=True)
    assert (rt.device.type, rt.compile, rt.bf16) == ("cpu", False, False)


CLAIMER = """
import sys, time
from prunestudy.training import gpus
c = gpus.claim(["gpu-a", "gpu-b"], 2, exclusive=sys.argv[1] == "alone", poll_s=0.05)
print(c.index, *c.slots, time.time(), flush=True)
time.sleep(float(sys.argv[2]))
print(time.time(), flush=True)
"""


def _claimer(tmp_path, mode: str, hold: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLAIMER, mode, str(hold)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, gpus.LOCK_DIR_ENV: str(tmp_path)},
    )


def test_concurrent_jobs_spread_over_gpus_and_share_each_up_to_its_slots(tmp_path):
    jobs = [_claimer(tmp_path, "one", 1.5) for _ in range(5)]
    outs = [j.communicate(timeout=30)[0].split("\n") for j in jobs]
    starts = sorted((float(o[0].split()[2]), tuple(map(int, o[0].split()[:2])), float(o[1])) for o in outs)
    first_four = [s[1] for s in starts[:4]]
    assert sorted(first_four) == [(0, 0), (0, 1), (1, 0), (1, 1)]  # two per device, both devices used
    assert starts[4][0] >= min(s[2] for s in starts[:4]) - 0.05  # the fifth waited for a slot to free


def test_a_job_alone_on_a_gpu_waits_for_every_slot_of_it(tmp_path):
    holders = [_claimer(tmp_path, "one", 1.0) for _ in range(2)]  # one on each device
    time.sleep(0.5)
    alone = _claimer(tmp_path, "alone", 0.0)
    start = float(alone.communicate(timeout=30)[0].split("\n")[0].split()[3])
    ends = [float(h.communicate(timeout=30)[0].split("\n")[1]) for h in holders]
    assert start >= min(ends) - 0.05  # it ran only once its device had no other job


def test_gpu_benchmark_runs_tiny_on_cpu(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [sys.executable, "benchmarks/bench_gpu.py", "--tiny", "--device", "cpu", "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
        timeout=300,
    )
    r = json.loads(out.read_text())
    for key in ("fp32", "bf16_channels_last", "quarter_width"):
        assert r["train_images_per_s"][key] > 0, key
    assert r["host_syncs_per_step"] == 0 and r["host_copies_per_step"] == 0 and r["repeatable_bitwise"] is True
    assert 0 <= r["fisher_argmin_agreement"] <= 1 and r["eval_val_test_s"] > 0
    assert r["prune_step_s"]["physical"] > 0 and r["prune_step_s"]["masked"] > 0
    assert r["latency_ms"]["median"] > 0 and r["latency_ms"]["p90"] >= r["latency_ms"]["median"]


def test_data_parallel_imagenet_benchmark_runs_tiny_over_two_cpu_processes(tmp_path):
    """The script a lent GPU node runs (bench_ddp.py under torchrun), here two gloo processes on the CPU."""
    out = tmp_path / "ddp.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["benchmarks/bench_ddp.py", "--tiny", "--device", "cpu", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    r = json.loads(out.read_text())
    assert r["processes"] == 2 and r["global_batch"] == 8 and r["image_size"] == 32
    assert 0 < r["images_per_s"]["min"] <= r["images_per_s"]["median"] <= r["images_per_s"]["max"]
    assert r["images_per_s_per_process"] == r["images_per_s"]["median"] / 2
