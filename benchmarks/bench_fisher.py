"""A fine-tuning step with Fisher saliency capture against the same step without it.

python benchmarks/bench_fisher.py [--device cpu|cuda] [--batch 128] [--steps 20]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import cifar_like, random_batch, report, timed
from prunestudy.arch import wrn
from prunestudy.methods.capture import ActivationCapture
from prunestudy.methods.fisher import Fisher
from prunestudy.training.data import Augment
from prunestudy.training.loop import make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--depth", type=int, default=40)
    args = p.parse_args()
    rt = Runtime.pick(args.device)
    data = cifar_like().to(rt.device)
    torch.manual_seed(0)
    spec = wrn(args.depth, 2)
    model = rt.prepare(spec.build()).train()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=args.batch, lr=8e-4))
    gen = torch.Generator().manual_seed(0)
    aug = Augment(pad=4, flip=True)

    def step(capture: ActivationCapture | None = None):
        train_step(model, opt, data, rt, random_batch(data, args.batch, aug, gen, rt.device), aug)
        if capture:
            capture.step()
        if rt.cuda:
            torch.cuda.synchronize()

    results = {}
    for _round in range(2):  # interleave, to spread drift of the machine over both
        results.setdefault("plain", []).append(timed(step, args.steps))
        capture = Fisher.watch(model, spec)
        results.setdefault("capture", []).append(timed(lambda c=capture: step(c), args.steps))
        capture.close()
    plain, capt = min(results["plain"]), min(results["capture"])
    report(
        f"fine-tuning step, WRN-{args.depth}-2, batch {args.batch}, {rt.device}",
        [("without capture (img/s)", args.batch / plain), ("with Fisher capture (img/s)", args.batch / capt)],
        ("time with capture / without", capt / plain, "<= 1.10"),
    )


if __name__ == "__main__":
    main()
