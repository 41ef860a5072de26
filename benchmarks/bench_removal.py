"""A whole prune-and-tune trajectory with physical removal (prunestudy) against the same trajectory with
masks at full-width compute, as the reference code does.

Both start from the same briefly trained base (so the Fisher decisions, and hence which blocks shrink
and empty, are those of a real trajectory) and run the same number of prune steps with the same
fine-tuning budget, saliency, decision rule and per-step evaluation. The masked variant writes no
checkpoints and counts nothing, so the comparison is conservative. The default is the paper's
trajectory: WRN-40-2, 1300 of its 1344 channels (about 30 minutes on 2 CPU cores).

    python benchmarks/bench_removal.py [--data digits|cifar-like] [--depth 40] [--prunes 1300] [--every 10]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import cifar_like, report
from prunestudy.arch import wrn
from prunestudy.methods.fisher import Fisher, FisherParams
from prunestudy.pruning.surgery import materialise
from prunestudy.pruning.trajectory import PruneState, _step_batches, run_chunk
from prunestudy.training import data as data_mod
from prunestudy.training.data import Augment, draw_batches
from prunestudy.training.loop import derive_seed, evaluate, fit, make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def masked_trajectory(
    spec, weights, data, cfg: FisherParams, aug: Augment, rt: Runtime, prunes: int, seed: int
) -> float:
    model = rt.prepare(materialise(spec, weights)).train()
    masks = {g.name: torch.ones(g.width, device=rt.device) for g in spec.groups()}
    for g in spec.groups():
        model.get_submodule(g.tap).register_forward_hook(lambda m, inp, out, n=g.name: out * masks[n].view(1, -1, 1, 1))
    opt = make_optimizer(model, cfg.recipe)
    t0 = time.perf_counter()
    for step in range(prunes):
        capture = Fisher.watch(model, spec)
        gen = torch.Generator().manual_seed(derive_seed(seed, "prune", step))
        for batch in draw_batches(_step_batches(len(data.train), cfg.every, cfg.batch_size, gen), aug, gen, rt.device):
            train_step(model, opt, data, rt, batch, aug)
            capture.step()
        capture.close()
        sal = capture.scores()
        scores = {i: sal[i] + 1e6 * (1 - masks[i]) for i in masks if masks[i].any()}  # reference: +1e6 if pruned
        i = min(scores, key=lambda k: float(scores[k].min()))
        masks[i][int(scores[i].argmin())] = 0
        evaluate(model, data, data.val, rt)
        evaluate(model, data, data.test, rt)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="digits", choices=["digits", "cifar-like"])
    p.add_argument("--depth", type=int, default=40)
    p.add_argument("--prunes", type=int, default=1300)
    p.add_argument("--base-epochs", type=int, default=5)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    rt = Runtime.pick(args.device)
    data = (data_mod.load("digits") if args.data == "digits" else cifar_like(2000)).to(rt.device)
    spec = wrn(args.depth, 2, num_classes=10, in_channels=data.in_channels, image_size=data.image_size)
    cfg = FisherParams(every=args.every, max_prunes=args.prunes, chunk=args.prunes, lr=2e-3, batch_size=args.batch)
    recipe = Recipe(epochs=args.base_epochs, batch_size=64, lr=0.1, milestones=(args.base_epochs * 3 // 5,))
    base = fit(spec, data, recipe, Augment(), seed=1, rt=rt)
    print(f"base: {args.base_epochs} epochs, val error {base.val_error:.4f}", flush=True)
    weights = {k: v.detach().clone() for k, v in base.model.state_dict().items()}
    state = PruneState(spec, {k: v.clone() for k, v in weights.items()}, {})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pruned = run_chunk(
            state,
            data,
            cfg,
            Augment(),
            rt,
            method=Fisher,
            seed=1,
            base=spec,
            end_step=args.prunes,
            steps_dir=Path(tmp) / "steps",
            resume_path=Path(tmp) / "resume.pt",
        )
        removal = time.perf_counter() - t0
    masked = masked_trajectory(spec, weights, data, cfg, Augment(), rt, args.prunes, seed=1)
    flops = sum(r["flops"] for r in pruned.rows) / len(pruned.rows) / spec.flops()
    print(f"mean FLOPs of the pruned networks along the trajectory: {flops:.3f} of the full width's")
    print("(the ratio physical removal would reach if step time were proportional to FLOPs)")
    report(
        f"{args.prunes} prune steps of WRN-{args.depth}-2 ({spec.prunable_channels} channels) on {args.data}, "
        f"{args.every} fine-tuning batches of {args.batch} each, {rt.device}",
        [("physical removal, incl. checkpoints (s)", removal), ("masks at full width (s)", masked)],
        ("removal / masked wall time", removal / masked, "<= 0.6"),
    )


if __name__ == "__main__":
    main()
