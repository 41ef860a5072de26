"""The best removal-vs-masks ratio a recorded trajectory allows on this machine: compute only.

Times one training step of the network at evenly spaced steps of a ``trajectory.csv`` (from the
workflow or ``bench_full_trajectory.py``) against the full-width network, on CIFAR-shaped inputs by
default. The mean ratio is what physical removal could save if evaluation, checkpoints and all other
per-step work were free; the whole-trajectory benchmark (``bench_removal.py``) cannot beat it.

    python benchmarks/bench_removal_ceiling.py TRAJECTORY.csv [--depth 40] [--image-size 32] [--batch 128]
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from benchmarks.common import cifar_like, report, timed
from prunestudy.arch import wrn
from prunestudy.training.data import Augment, Batch
from prunestudy.training.loop import make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("trajectory")
    p.add_argument("--depth", type=int, default=40)
    p.add_argument("--image-size", type=int, default=32, choices=[8, 16, 32])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--samples", type=int, default=14)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    rt = Runtime.pick(args.device)
    data = cifar_like(1000, image_size=args.image_size).to(rt.device)
    base = wrn(args.depth, 2, num_classes=10, in_channels=3, image_size=args.image_size)
    rows = pd.read_csv(args.trajectory)
    picks = [round(i * (len(rows) - 1) / (args.samples - 1)) for i in range(args.samples)]
    recipe = Recipe(epochs=1, batch_size=args.batch, lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batch = Batch(torch.randperm(len(data.train), generator=gen)[: args.batch].to(rt.device))

    def step_time(spec) -> float:
        model = rt.prepare(spec.build()).train()
        opt = make_optimizer(model, recipe)
        return timed(lambda: train_step(model, opt, data, rt, batch, Augment()), repeats=5, warmup=1)

    full = step_time(base)
    ratios = []
    for i in picks:
        spec = base.with_widths([int(m) for m in str(rows["widths"].iloc[i]).split(";")])
        ratios.append(step_time(spec) / full)
        print(f"  step {rows['step'].iloc[i]:5d}: FLOPs {spec.flops() / base.flops():.3f}, step time {ratios[-1]:.3f}")
    report(
        f"WRN-{args.depth}-2 train step along {args.trajectory} ({args.samples} samples), "
        f"{args.image_size}x{args.image_size}, batch {args.batch}, {rt.device}",
        [("full-width step (ms)", 1000 * full)],
        ("mean pruned / full step time", sum(ratios) / len(ratios), "<= 0.6 needed for the removal target"),
    )


if __name__ == "__main__":
    main()
