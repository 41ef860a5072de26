"""What a study costs before it runs: images and training FLOPs per stage, and GPU-hours at a stated rate.

Reads a config (default ``config/paper.yaml``) and counts, per stage over every experiment, the images each
job trains on and the FLOPs that takes (3x the forward FLOPs of the network trained: forward, input and
weight gradients), plus the evaluations of every prune step of an iterative method. Each large network
is counted once however many experiments prune it.

The pruned networks do not exist before the run, so they are estimated: a setting that names widths
(L1-norm, ThiNet, regression) gives its exact architecture; a fraction of channels (Slimming) narrows
every group by it; an iterative method's targets are the uniformly scaled network of that many
parameters (pruned networks keep more FLOPs per parameter, so this is a lower bound on Scratch-E);
a mask (magnitude) trains at the dense network's FLOPs while its Scratch-B budget follows its nonzero
FLOPs, estimated as the dense FLOPs times the fraction kept; Sparse Structure Selection's removals
depend on training and are costed as none. Hours assume that every network trains at the FLOPs rate
of the first experiment's large network at ``--images-per-s`` on one GPU: state that rate when quoting
the hours. A data-parallel job (``gpu.per_job``) spends about the same GPU-hours on more GPUs.

    python benchmarks/paper_cost.py [--config config/paper.yaml] --images-per-s 20000
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from prunestudy.arch import ArchSpec
from prunestudy.io.catalog import DATASETS, held_out
from prunestudy.io.config import base_spec, large_networks, member_spec, validate
from prunestudy.methods import method
from prunestudy.methods.base import ITERATIVE, MASK
from prunestudy.pruning.budgets import scale_to_params, scratch_b_epochs


@dataclass
class Stage:
    jobs: int = 0
    images: float = 0.0
    flops: float = 0.0

    def add(self, jobs: int, epochs: float, per_epoch: int, flops_per_image: float) -> None:
        """``jobs`` trainings of ``epochs`` epochs each on a network of ``flops_per_image`` forward FLOPs."""
        self.jobs += jobs
        self.images += jobs * epochs * per_epoch
        self.flops += 3 * flops_per_image * jobs * epochs * per_epoch


@dataclass(frozen=True)
class Pruned:
    """A pruned network as costed: what one training image costs, and the FLOPs its Scratch-B ratio uses."""

    train_flops: float
    ratio_flops: float


def split_sizes(data: dict) -> tuple[int, int, int]:
    """(train, val, test) images of the config's data."""
    info = DATASETS[data["name"]]
    test = held_out(info.size, data["test_size"]) if info.test_size is None else info.test_size
    pool = info.size - (test if info.test_size is None else 0)
    val = held_out(pool, data["val_size"])
    return pool - val, val, test


def pruned(e: dict, base: ArchSpec, target: float | str) -> Pruned:
    """The estimate of the module docstring for one target of a one-shot experiment."""
    m = method(e["method"])
    f_base = base.flops()
    if m.produces == MASK:
        return Pruned(f_base, f_base * (1 - float(target)))
    setting = e["prune"].get("settings", {}).get(target) if isinstance(target, str) else None
    if setting and "widths" in setting:
        return _as(base.with_widths(setting["widths"]))
    if setting:
        keep = setting.get("keep", 1 - sum(setting.get("ratios", [0])) / max(1, len(setting.get("ratios", [0]))))
        return _as(base.with_widths([max(1, int(w * keep)) for w in base.widths_vector]))
    if e["method"] == "slimming":
        return _as(base.with_widths([max(1, int(w * (1 - float(target)))) for w in base.widths_vector]))
    return Pruned(f_base, f_base)  # sss: its removals depend on training


def _as(spec: ArchSpec) -> Pruned:
    return Pruned(spec.flops(), spec.flops())


def oneshot(cfg: dict, e: dict, stages: dict[str, Stage], per_epoch: int) -> None:
    base = base_spec(method(e["method"]).base_options(e["model"]), cfg["data"])
    seeds, epochs_e = len(cfg["seeds"]), cfg["scratch_e"]["epochs"] or cfg["train"]["epochs"]
    cap, f_base = cfg["scratch_b"]["max_factor"], base.flops()
    longest = 0
    for t in e["targets"]:
        p = pruned(e, base, t)
        epochs_b = scratch_b_epochs(epochs_e, f_base, p.ratio_flops, cap)
        longest = max(longest, epochs_b)
        stages["fine-tune"].add(seeds, e["finetune"]["epochs"], per_epoch, p.train_flops)
        stages["Scratch-E"].add(seeds, epochs_e, per_epoch, p.train_flops)
        stages["Scratch-B"].add(seeds, epochs_b, per_epoch, p.train_flops)
        stages["lottery tickets"].add(2 * seeds * len(e["lottery"]["lrs"]), epochs_e, per_epoch, p.train_flops)
        guides = 2 * e["guided"] + e["guided_layer"]
        stages["guided"].add(guides * seeds, cfg["train"]["epochs"], per_epoch, p.train_flops)
        if e["long_base"]:
            stages["long base"].add(seeds, e["finetune"]["epochs"], per_epoch, p.train_flops)
    if e["long_base"]:
        stages["long base"].add(seeds, longest, per_epoch, f_base)


def iterative(cfg: dict, e: dict, stages: dict[str, Stage], sizes: tuple[int, int, int], per_epoch: int) -> None:
    """The prune-and-tune trajectory (every step's fine-tuning batches and its val + test evaluation) and the
    arms retrained from it, Crowley et al.'s families included."""
    _, n_val, n_test = sizes
    base = base_spec(e["model"], cfg["data"])
    seeds, epochs = len(cfg["seeds"]), cfg["train"]["epochs"]
    epochs_e = cfg["scratch_e"]["epochs"] or epochs
    p = method(e["method"]).params(**e["prune"])
    steps = seeds * p.max_prunes
    images, evals = steps * p.every * p.batch_size, steps * (n_val + n_test)
    # FLOPs fall roughly linearly from the base to the last step's (the scaled net at the last target)
    mean = (base.flops() + scale_to_params(base, int(min(e["targets"]) * base.param_count()))[0].flops()) / 2
    s = stages["prune-and-tune (incl. val+test per step)"]
    s.jobs, s.images, s.flops = (
        s.jobs + seeds * p.chunks,
        s.images + images + evals,
        s.flops + mean * (3 * images + evals),
    )
    for t in e["targets"]:
        f = scale_to_params(base, int(t * base.param_count()))[0].flops()
        stages["Scratch-E"].add(seeds, epochs_e, per_epoch, f)
        stages["Scratch-B"].add(
            seeds, scratch_b_epochs(epochs_e, base.flops(), f, cfg["scratch_b"]["max_factor"]), per_epoch, f
        )
    fam = e["families"]
    members = [member_spec(e["model"], cfg["data"], k, v) for k in ("width", "bottleneck") for v in fam[k]]
    members += [scale_to_params(base, int(t * base.param_count()))[0] for t in fam["scaled"]["targets"]]
    for m in members:
        stages["families (width, bottleneck, scaled)"].add(seeds, epochs, per_epoch, m.flops())


STAGES = (
    "base",
    "prune-and-tune (incl. val+test per step)",
    "fine-tune",
    "Scratch-E",
    "Scratch-B",
    "lottery tickets",
    "guided",
    "long base",
    "families (width, bottleneck, scaled)",
)


def stages(cfg: dict) -> dict[str, Stage]:
    """Every stage of the study's config that trains anything, in pipeline order."""
    out = {name: Stage() for name in STAGES}
    sizes = split_sizes(cfg["data"])
    per_epoch = sizes[0] // cfg["train"]["batch_size"] * cfg["train"]["batch_size"]
    bases, _ = large_networks(cfg)
    for b in bases.values():
        out["base"].add(
            len(cfg["seeds"]), cfg["train"]["epochs"], per_epoch, base_spec(b["model"], cfg["data"]).flops()
        )
    for e in cfg["experiments"]:
        if method(e["method"]).kind == ITERATIVE:
            iterative(cfg, e, out, sizes, per_epoch)
        else:
            oneshot(cfg, e, out, per_epoch)
    return {name: s for name, s in out.items() if s.jobs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="config/paper.yaml")
    ap.add_argument(
        "--images-per-s", type=float, required=True, help="training images/s of the first large network on one GPU"
    )
    args = ap.parse_args()
    logging.getLogger("prunestudy").setLevel(logging.ERROR)  # Scratch-B's ratio-1 warnings: SSS costed as unpruned
    cfg = validate(yaml.safe_load(Path(args.config).read_text()))
    rows = stages(cfg)
    first = cfg["experiments"][0]
    ref = base_spec(method(first["method"]).base_options(first["model"]), cfg["data"])
    rate = args.images_per_s * 3 * ref.flops()  # FLOP/s
    print(f"assumed rate: {args.images_per_s:g} images/s of {ref.spec_id} on one GPU = {rate / 1e12:.1f} TFLOP/s")
    print("| stage | jobs | images (M) | training PFLOPs | GPU-hours |\n|---|---|---|---|---|")
    total = Stage(sum(s.jobs for s in rows.values()), sum(s.images for s in rows.values()))
    total.flops = sum(s.flops for s in rows.values())
    for name, s in [*rows.items(), ("total", total)]:
        print(f"| {name} | {s.jobs} | {s.images / 1e6:.1f} | {s.flops / 1e15:.1f} | {s.flops / rate / 3600:.2f} |")


if __name__ == "__main__":
    main()
