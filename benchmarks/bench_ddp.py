"""One ImageNet-shaped data-parallel training step, timed: what a GPU node would give `config/liu-imagenet.yaml`.

Run under torchrun, one process per GPU (or per CPU process with ``--device cpu``, over gloo):

    torchrun --standalone --nproc-per-node 4 benchmarks/bench_ddp.py [--model resnet50] [--batch 256]
    torchrun --standalone --nproc-per-node 2 benchmarks/bench_ddp.py --tiny --device cpu

The step is the training loop's own (:func:`prunestudy.training.loop.step` on the DDP-wrapped network of
:func:`~prunestudy.training.loop.training_forwards`, bf16 autocast + channels_last on CUDA, compiled with
``--compile``), fed synthetic normalised batches already on the device: it measures the network and the
gradient all-reduce, not the JPEG decoding (``bench_imagenet_data.py`` measures that). The global batch
is split over the processes as the workflow splits it. Warm-up steps run first; then ``--steps`` timed
steps, repeated ``--repeats`` times; rank 0 prints the median and min-max of global training images/s,
and the median per process (one GPU each): the per-GPU rate ``benchmarks/paper_cost.py --images-per-s`` takes.
``--tiny`` shrinks the network and the images so that two CPU processes finish in seconds (the suite runs it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from prunestudy.arch import build_spec
from prunestudy.training import distributed
from prunestudy.training.loop import make_optimizer, step, training_forwards
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

MODELS = {
    "resnet50": {"family": "imagenet_resnet", "depth": 50},
    "resnet34": {"family": "imagenet_resnet", "depth": 34},
    "vgg16": {"family": "imagenet_vgg", "name": "vgg16"},
}


def _sync(rt: Runtime) -> None:
    if rt.cuda:
        torch.cuda.synchronize()


def timed_steps(model_options: dict, batch: int, image: int, steps: int, repeats: int, rt: Runtime) -> list[float]:
    """Global images/s of ``repeats`` runs of ``steps`` data-parallel steps each (after three warm-up steps)."""
    world = distributed.world_size()
    spec = build_spec(model_options, num_classes=1000, in_channels=3, image_size=image)
    torch.manual_seed(0)
    model = rt.prepare(spec.build()).train()
    train_forward, _ = training_forwards(model, rt, world)
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=batch, lr=0.1))
    gen = torch.Generator().manual_seed(distributed.rank())
    x = torch.randn(batch // world, 3, image, image, generator=gen).to(rt.device, memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (batch // world,), generator=gen).to(rt.device)
    for _ in range(3):
        step(train_forward, opt, rt, x, y)
    rates = []
    for _ in range(repeats):
        _sync(rt)
        distributed.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step(train_forward, opt, rt, x, y)
        _sync(rt)
        distributed.barrier()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="resnet50")
    ap.add_argument("--batch", type=int, default=256, help="the global batch (Liu's ImageNet recipe: 256)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", choices=["auto", "true", "false"], default="false")
    ap.add_argument("--tiny", action="store_true", help="ResNet-18 at width 1/8 on 32x32 images, batch 8, 2 steps")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    options, image = MODELS[args.model], 224
    if args.tiny:
        options, image = {"family": "imagenet_resnet", "depth": 18, "width": 0.125}, 32
        args.batch, args.steps, args.repeats = 8, 2, 2
    with distributed.session(args.device) as launch:
        rt = Runtime.pick(args.device, compile=args.compile, fixed_shape=True)
        rates = timed_steps(options, args.batch, image, args.steps, args.repeats, rt)
        if distributed.is_main():
            result = {
                "model": options,
                "image_size": image,
                "global_batch": args.batch,
                "processes": launch.world_size,
                "device": rt.describe(),
                "images_per_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
                "images_per_s_per_process": statistics.median(rates) / launch.world_size,
            }
            print(json.dumps(result, indent=2))
            if args.json:
                args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
