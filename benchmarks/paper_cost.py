"""What an iterative (Fisher) study costs: images and training FLOPs per stage, and GPU-hours at a given rate.

Reads a config (default ``config/paper.yaml``) and counts, per stage, the images each job trains on
and the FLOPs that takes (3x the forward FLOPs of the network trained: forward, input and weight
gradients), plus the evaluations of every prune step. The pruned networks do not exist before the run,
so the scratch arms are costed at the uniformly scaled network of the same parameter count (pruned
networks keep more FLOPs per parameter, so this is a lower bound on Scratch-E and leaves Scratch-B,
which is FLOPs-matched to the base, exact unless the cap binds). Hours assume that every stage runs at
the same FLOPs rate as WRN-40-2 at ``--images-per-s``; small networks use a GPU less well, which
several jobs per GPU (``gpu.jobs_per_gpu``) are for.

    python benchmarks/paper_cost.py [--config config/paper.yaml] --images-per-s 20000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from prunestudy.io.config import base_spec, member_spec, validate
from prunestudy.methods.fisher import FisherParams
from prunestudy.pruning.budgets import scale_to_params, scratch_b_epochs

TRAIN_IMAGES = {"cifar10": 50000, "cifar100": 50000, "digits": 1797}
TEST_IMAGES = {"cifar10": 10000, "cifar100": 10000}


def stages(cfg: dict) -> list[tuple[str, int, float, float]]:
    """(stage, jobs, images, training FLOPs) for the config's first iterative experiment."""
    (e,) = [x for x in cfg["experiments"] if x["method"] == "fisher"][:1]
    data, seeds, recipe = cfg["data"], len(cfg["seeds"]), cfg["train"]
    n_val = data["val_size"] if data["val_size"] >= 1 else round(data["val_size"] * TRAIN_IMAGES[data["name"]])
    n_train = TRAIN_IMAGES[data["name"]] - n_val
    n_test = TEST_IMAGES.get(data["name"], round(data["test_size"] * TRAIN_IMAGES[data["name"]]))
    base = base_spec(e["model"], data)
    f_base, epochs = base.flops(), recipe["epochs"]
    epochs_e = cfg["scratch_e"]["epochs"] or epochs
    per_epoch = n_train // recipe["batch_size"] * recipe["batch_size"]
    out = [("base", seeds, seeds * epochs * per_epoch, 3 * f_base * seeds * epochs * per_epoch)]
    p = FisherParams(**e["prune"])
    steps = seeds * p.max_prunes
    images = steps * p.every * p.batch_size
    evals = steps * (n_val + n_test)
    # FLOPs fall roughly linearly from the base to the last step's (the scaled net at the last budget)
    last = scale_to_params(base, int(min(e["targets"]) * base.param_count()))[0].flops()
    mean = (f_base + last) / 2
    out.append(
        ("prune-and-tune (incl. val+test per step)", seeds * p.chunks, images + evals, mean * (3 * images + evals))
    )
    scaled = [scale_to_params(base, int(t * base.param_count()))[0] for t in e["targets"]]
    sb = [scratch_b_epochs(epochs_e, f_base, s.flops(), cfg["scratch_b"]["max_factor"]) for s in scaled]
    out.append(
        (
            "Scratch-E",
            seeds * len(scaled),
            seeds * len(scaled) * epochs_e * per_epoch,
            sum(3 * s.flops() * seeds * epochs_e * per_epoch for s in scaled),
        )
    )
    out.append(
        (
            "Scratch-B",
            seeds * len(scaled),
            seeds * sum(sb) * per_epoch,
            sum(3 * s.flops() * seeds * b * per_epoch for s, b in zip(scaled, sb, strict=True)),
        )
    )
    fam = e["families"]
    members = [member_spec(e["model"], data, k, v) for k in ("width", "bottleneck") for v in fam[k]]
    members += [scale_to_params(base, int(t * base.param_count()))[0] for t in fam["scaled"]["targets"]]
    out.append(
        (
            "families (width, bottleneck, scaled)",
            seeds * len(members),
            seeds * len(members) * epochs * per_epoch,
            sum(3 * m.flops() * seeds * epochs * per_epoch for m in members),
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="config/paper.yaml")
    ap.add_argument("--images-per-s", type=float, required=True, help="WRN-40-2 training rate on the GPU")
    args = ap.parse_args()
    cfg = validate(yaml.safe_load(Path(args.config).read_text()))
    rows = stages(cfg)
    f_img = 3 * base_spec(cfg["experiments"][0]["model"], cfg["data"]).flops()
    rate = args.images_per_s * f_img  # FLOP/s
    print("| stage | jobs | images (M) | training PFLOPs | GPU-hours |\n|---|---|---|---|---|")
    for name, jobs, images, flops in [
        *rows,
        ("total", sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)),
    ]:
        print(f"| {name} | {jobs} | {images / 1e6:.1f} | {flops / 1e15:.1f} | {flops / rate / 3600:.2f} |")


if __name__ == "__main__":
    main()
