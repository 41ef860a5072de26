"""prunestudy's training step against a plain eager PyTorch loop, same model, batch and device.

python benchmarks/bench_train_step.py [--device cpu|cuda] [--batch 128] [--steps 20]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from benchmarks.common import cifar_like, random_batch, report, timed
from prunestudy.arch import wrn
from prunestudy.training.data import Augment
from prunestudy.training.loop import make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--depth", type=int, default=16)
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    rt = Runtime.pick(args.device)
    data = cifar_like().to(rt.device)
    spec = wrn(args.depth, 2)
    recipe = Recipe(epochs=1, batch_size=args.batch, lr=0.05)
    gen = torch.Generator().manual_seed(0)

    def idx():
        return torch.randint(0, len(data.train), (args.batch,), generator=gen).to(rt.device)

    # plain eager loop: the textbook step on a pre-normalised float copy of the data
    torch.manual_seed(0)
    plain_model = rt.prepare(spec.build()).train()
    plain_opt = torch.optim.SGD(
        plain_model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    x_float = data.normalize(data.train.x).contiguous(memory_format=torch.channels_last)

    def plain():
        i = idx()
        with rt.autocast():
            loss = F.cross_entropy(plain_model(x_float[i]), data.train.y[i])
        plain_opt.zero_grad()
        loss.backward()
        plain_opt.step()
        if rt.cuda:
            torch.cuda.synchronize()

    torch.manual_seed(0)
    model = rt.prepare(spec.build()).train()
    opt = make_optimizer(model, recipe)

    def ours(aug: Augment):
        def step():
            train_step(model, opt, data, rt, random_batch(data, args.batch, aug, gen, rt.device), aug)
            if rt.cuda:
                torch.cuda.synchronize()

        return step

    t_plain = timed(plain, args.steps)
    t_ours = timed(ours(Augment()), args.steps)
    t_aug = timed(ours(Augment(pad=4, flip=True)), args.steps)
    b = args.batch
    report(
        f"training step, WRN-{args.depth}-2, batch {b}, {rt.device}, {torch.get_num_threads()} threads",
        [
            ("plain eager loop (img/s)", b / t_plain),
            ("prunestudy train_step, no augmentation (img/s)", b / t_ours),
            ("prunestudy train_step, crop+flip (img/s)", b / t_aug),
        ],
        ("prunestudy / plain, same work", t_plain / t_ours, ">= 1.0"),
    )
    print(f"  {'prunestudy with augmentation / plain':<44} {t_plain / t_aug:12.3f}")


if __name__ == "__main__":
    main()
