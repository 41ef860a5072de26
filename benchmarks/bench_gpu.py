"""The GPU path in one run (under five minutes on one H100), on synthetic CIFAR-shaped uint8 data.

Measures, for WRN-40-2: training images/s in fp32, in bf16 + channels_last, compiled, and at a quarter
of the mid widths; a Fisher prune step with physical removal against the same step with masks at full
width; val+test evaluation time; agreement of the fp32 and bf16 Fisher argmin; host syncs and copies per
training step; whether two identical runs agree bit for bit; and the spread of the forward latency.
``--tiny`` shrinks everything so that it runs on a CPU in well under a minute (the test suite runs it
that way). All rows run channels_last, which the runtime always uses.

    python benchmarks/bench_gpu.py [--device cuda] [--json out.json]
    python benchmarks/bench_gpu.py --tiny --device cpu
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.bench_removal import masked_trajectory
from benchmarks.common import cifar_like
from prunestudy.arch import wrn
from prunestudy.methods.fisher import Fisher, FisherParams
from prunestudy.methods.selectors import one_at_a_time as choose_channel
from prunestudy.pruning.trajectory import PruneState, run_chunk
from prunestudy.training.data import Augment, draw_batches, epoch_batches
from prunestudy.training.latency import latency_samples
from prunestudy.training.loop import evaluate, make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime
from prunestudy.training.transfers import Transfers

AUG = Augment(pad=4, flip=True)
SIZES = {  # name: (depth, images, batch, timed steps, image size, prune steps, every)
    "full": (40, 10000, 128, 40, 32, 3, 20),
    "tiny": (10, 600, 32, 4, 16, 2, 2),
}


def _sync(rt: Runtime) -> None:
    if rt.cuda:
        torch.cuda.synchronize()


def train_rate(spec, data, rt: Runtime, batch: int, steps: int) -> float:
    """Images/s of the training step (after two warm-up steps, or the compilation)."""
    torch.manual_seed(0)
    model = rt.prepare(spec.build()).train()
    forward = rt.compiled(model)
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=batch, lr=0.05))
    gen = torch.Generator().manual_seed(0)
    batches = draw_batches(epoch_batches(len(data.train), batch, gen), AUG, gen, rt.device)
    for b in batches[:2]:
        train_step(forward, opt, data, rt, b, AUG)
    _sync(rt)
    t0 = time.perf_counter()
    for i in range(steps):
        train_step(forward, opt, data, rt, batches[2 + i % (len(batches) - 2)], AUG)
    _sync(rt)
    return steps * batch / (time.perf_counter() - t0)


def repeatable(spec, data, rt: Runtime, batch: int, steps: int) -> bool:
    """Whether two identical short trainings end with bit-identical weights (the determinism settings)."""
    finals = []
    for _ in range(2):
        torch.manual_seed(0)
        model = rt.prepare(spec.build()).train()
        opt = make_optimizer(model, Recipe(epochs=1, batch_size=batch, lr=0.05))
        gen = torch.Generator().manual_seed(0)
        for b in draw_batches(epoch_batches(len(data.train), batch, gen), AUG, gen, rt.device)[:steps]:
            train_step(model, opt, data, rt, b, AUG)
        finals.append([p.detach().clone() for p in model.parameters()])
    return all(torch.equal(a, b) for a, b in zip(*finals, strict=True))


def step_transfers(spec, data, rt: Runtime, batch: int) -> tuple[int, int]:
    """Host copies and syncs in two training steps with Fisher capture (on ``meta`` for a CPU)."""
    dev = rt if rt.cuda else Runtime(torch.device("meta"))
    on_device = data.to(dev.device)
    model = dev.prepare(spec.build()).train()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=batch, lr=0.05))
    hooks = Fisher.watch(model, spec).hooks
    gen = torch.Generator().manual_seed(0)
    batches = draw_batches(epoch_batches(len(data.train), batch, gen), AUG, gen, dev.device)
    train_step(model, opt, on_device, dev, batches[0], AUG, hooks)
    with Transfers() as t:
        for b in batches[1:3]:
            train_step(model, opt, on_device, dev, b, AUG, hooks)
    return len(t.copies) // 2, t.syncs // 2


def argmin_agreement(spec, data, rt: Runtime, batch: int, trials: int) -> float:
    """How often the fp32 and the bf16 forward pick the same channel (saliency always formed in fp32)."""
    same = 0
    for trial in range(trials):
        picks = []
        for bf16 in (False, True):
            torch.manual_seed(trial)
            model = rt.prepare(spec.build()).train()
            capture = Fisher.watch(model, spec)
            run = replace(rt, bf16=bf16, compile=False)
            gen = torch.Generator().manual_seed(trial)
            for b in draw_batches(epoch_batches(len(data.train), batch, gen)[:4], AUG, gen, rt.device):
                x = run.batch(data, data.train, b, AUG)
                with run.autocast():
                    loss = torch.nn.functional.cross_entropy(model(x), data.train.y[b.idx])
                loss.backward()
                capture.step()
            capture.close()
            picks.append(choose_channel(capture.scores(), spec)[:2])
        same += picks[0] == picks[1]
    return same / trials


def prune_steps(spec, data, rt: Runtime, steps: int, every: int, batch: int) -> dict[str, float]:
    """Seconds per Fisher prune step (fine-tuning + selection + evaluation): physical removal vs masks."""
    cfg = FisherParams(every=every, max_prunes=steps, chunk=steps, batch_size=batch, lr=2e-3)
    torch.manual_seed(0)
    weights = {k: v.detach() for k, v in spec.build().state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_chunk(
            PruneState(spec, dict(weights), {}),
            data,
            cfg,
            AUG,
            replace(rt, compile=False),
            method=Fisher,
            seed=1,
            base=spec,
            end_step=steps,
            steps_dir=Path(tmp) / "steps",
            resume_path=Path(tmp) / "resume.pt",
        )
        physical = (time.perf_counter() - t0) / steps
    masked = masked_trajectory(spec, weights, data, cfg, AUG, replace(rt, compile=False), steps, seed=1) / steps
    return {"physical": physical, "masked": masked}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tiny", action="store_true", help="small sizes, for a CPU (and the test suite)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="default: on CUDA only")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    depth, n, batch, steps, size, prunes, every = SIZES["tiny" if args.tiny else "full"]
    rt = Runtime.pick(args.device)
    data = cifar_like(n, image_size=size).to(rt.device)
    spec = wrn(depth, 2, image_size=size)
    quarter = spec.with_widths([max(1, w // 4) for w in spec.widths_vector])
    fp32, bf16 = replace(rt, bf16=False), replace(rt, bf16=True)
    rates = {
        "fp32": train_rate(spec, data, fp32, batch, steps),
        "bf16_channels_last": train_rate(spec, data, bf16, batch, steps),
        "quarter_width": train_rate(quarter, data, bf16, batch, steps),
    }
    if args.compile if args.compile is not None else rt.cuda:
        rates["bf16_channels_last_compiled"] = train_rate(spec, data, replace(bf16, compile=True), batch, steps)
    model = bf16.prepare(spec.build())
    t0 = time.perf_counter()
    evaluate(model, data, data.val, bf16)
    evaluate(model, data, data.test, bf16)
    eval_s = time.perf_counter() - t0
    copies, syncs = step_transfers(spec, data, bf16, batch)
    lat = sorted(latency_samples(model, spec, bf16, batch, repeats=30 if not args.tiny else 10, warmup=5))
    result = {
        "device": bf16.describe(),
        "model": f"WRN-{depth}-2 at {size}x{size}, batch {batch}",
        "train_images_per_s": rates,
        "eval_val_test_s": eval_s,
        "prune_step_s": prune_steps(spec, data, bf16, prunes, every, batch),
        "fisher_argmin_agreement": argmin_agreement(spec, data, rt, batch, trials=2 if args.tiny else 5),
        "repeatable_bitwise": repeatable(spec, data, bf16, batch, steps),
        "host_copies_per_step": copies,
        "host_syncs_per_step": syncs,
        "latency_ms": {
            "median": lat[len(lat) // 2],
            "p10": lat[len(lat) // 10],
            "p90": lat[(9 * len(lat)) // 10],
            "max": lat[-1],
        },
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
