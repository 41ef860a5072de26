"""Liu et al.'s one-shot methods: what their training hooks and their one-shot prune cost.

python benchmarks/bench_oneshot.py [--device cpu|cuda] [--batch 64] [--steps 10] [--model vgg16]

- a Network Slimming sparsity-training step against a plain step, same VGG (target <= 1.05x);
- a masked fine-tuning step (unstructured magnitude pruning at 60%) against a dense step (<= 1.10x);
- one-shot Network Slimming of VGG-19 at 70% of its channels, selection and surgery (< 1 s on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import cifar_like, random_batch, report, timed
from prunestudy.arch import vgg
from prunestudy.methods.magnitude import Magnitude, MagnitudeParams
from prunestudy.methods.slimming import Slimming, SlimmingParams
from prunestudy.pruning import masks
from prunestudy.pruning.oneshot import load_weights, prune_once
from prunestudy.training.data import Augment
from prunestudy.training.loop import make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def step_time(spec, data, rt, batch, steps, hooks_for=None, init=None) -> float:
    torch.manual_seed(0)
    model = spec.build()
    if init:
        init(model)
    model = rt.prepare(model).train()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=batch, lr=0.01))
    hooks = hooks_for(model, opt) if hooks_for else None
    gen = torch.Generator().manual_seed(0)

    def step():
        aug = Augment(pad=4, flip=True)
        train_step(model, opt, data, rt, random_batch(data, batch, aug, gen, rt.device), aug, hooks)
        if rt.cuda:
            torch.cuda.synchronize()

    return timed(step, steps)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--model", default="vgg16")
    args = p.parse_args()
    rt = Runtime.pick(args.device)
    data = cifar_like().to(rt.device)
    spec = vgg(args.model)

    def against_plain(hooks_for, init=None) -> tuple[float, float]:
        """Median step seconds without and with ``hooks_for``, interleaved to spread the machine's drift."""
        plain, hooked = [], []
        for _ in range(2):
            plain.append(step_time(spec, data, rt, args.batch, args.steps))
            hooked.append(step_time(spec, data, rt, args.batch, args.steps, hooks_for, init))
        return min(plain), min(hooked)

    plain, sparse = against_plain(lambda m, o: Slimming.hooks(m, o, spec, {"sparsity": 1e-4}))
    report(
        f"Network Slimming sparsity training, {args.model}, batch {args.batch}, {rt.device}",
        [("plain step (img/s)", args.batch / plain), ("sparsity step (img/s)", args.batch / sparse)],
        ("sparsity / plain step time", sparse / plain, "<= 1.05"),
    )

    torch.manual_seed(0)
    state = spec.build().state_dict()
    pruned = prune_once(state, spec, Magnitude, 0.6, MagnitudeParams())
    dense, masked = against_plain(lambda m, o: masks.hooks(m, o, pruned.mask), load_weights(pruned.state))
    report(
        f"masked fine-tuning (60% of conv weights pruned), {args.model}, batch {args.batch}, {rt.device}",
        [("dense step (img/s)", args.batch / dense), ("masked step (img/s)", args.batch / masked)],
        ("masked / dense step time", masked / dense, "<= 1.10"),
    )

    big = vgg("vgg19")
    torch.manual_seed(0)
    state = big.build().state_dict()
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        net = prune_once(state, big, Slimming, 0.7, SlimmingParams())
        times.append(time.perf_counter() - t0)
    report(
        f"one-shot Network Slimming of VGG-19 at 70% (selection + surgery), {torch.get_num_threads()} threads",
        [("parameters before", big.param_count()), ("parameters after", net.spec.param_count())],
        ("median seconds", sorted(times)[2], "< 1"),
    )


if __name__ == "__main__":
    main()
