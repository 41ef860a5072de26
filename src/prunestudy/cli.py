"""``prunestudy <stage>``: the command line of the workflow's jobs. It parses and dispatches, nothing else.

Each command takes the config slices its rule depends on as JSON strings (the rule's ``params:``) and
calls one function of :mod:`prunestudy.jobs` with them; the job bodies live there.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from prunestudy.pruning.arms import PRUNED, TRAINED, TUNED


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON: {err}") from err


def _runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=1, help="torch threads (config key threads)")
    p.add_argument("--jobs-per-gpu", type=int, default=1, help="jobs that share one GPU (config gpu.jobs_per_gpu)")


def _context(p: argparse.ArgumentParser) -> None:
    """The options every job of one run of one experiment takes (a :class:`prunestudy.jobs.common.Context`)."""
    p.add_argument("--experiment", required=True, help="the experiment's name (recorded in every artefact)")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data", type=_json, required=True, help="the data config slice (JSON)")
    p.add_argument("--model", type=_json, required=True, help="the experiment's model options (JSON)")
    _runtime(p)
    p.add_argument("--compile", default="auto", choices=["auto", "true", "false"], help="config gpu.compile")


CONTEXT = ("experiment", "seed", "data", "model", "device", "threads", "jobs_per_gpu", "compile")


def _fits(p: argparse.ArgumentParser) -> None:
    """A job that trains (and so may run data-parallel)."""
    p.add_argument(
        "--processes", type=int, default=1, help="the processes it must run as, one GPU each (config gpu.per_job)"
    )


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one network (any arm) and write metrics.json and model.pt")
    _context(p)
    _fits(p)
    p.add_argument("--arm", required=True, choices=TRAINED)
    p.add_argument("--recipe", type=_json, required=True)
    p.add_argument("--scratch-e", type=_json, help="the scratch_e slice (scratch arms, the long base)")
    p.add_argument("--scratch-b", type=_json, help="the scratch_b slice (Scratch-B, the long base)")
    p.add_argument("--arch", help="spec JSON of the sampled architecture (scratch arms, scaled source)")
    p.add_argument("--mask", help="a pruned network's mask.pt: the scratch arms keep its mask (unstructured pruning)")
    p.add_argument("--regulariser", type=_json, help="base training: {method, ...its settings}")
    p.add_argument("--long-from", nargs="+", default=(), help="base-long: the pruned specs or masks it outlasts")
    p.add_argument("--member", type=float, help="k' (width), Z (bottleneck) or target param fraction (scaled)")
    p.add_argument("--slot", help="the run's slot: the target an arch came from, or the member")
    p.add_argument("--guide", nargs="+", default=(), help="guided, uniform: every pruning seed's spec at the target")
    p.add_argument("--source-record", nargs="+", help="the metrics.json beside --arch, --mask or each --guide")
    p.add_argument("--source-expect", type=_json, help="the run each source comes from (JSON; a list for --guide)")
    p.add_argument("--lr", type=float, help="a lottery arm's initial learning rate")
    p.add_argument("--init", help="winning-ticket: the large network's init.pt (its initial weights)")
    p.add_argument("--init-expect", type=_json, help="winning-ticket: the large network's run identity (JSON)")
    p.add_argument("--out", required=True)
    p.set_defaults(job="prunestudy.jobs.train:train")


def _add_oneshot(sub) -> None:
    p = sub.add_parser("oneshot", help="prune the large network once to a target, then fine-tune it")
    _context(p)
    _fits(p)
    p.add_argument("--method", required=True)
    p.add_argument("--prune", type=_json, required=True, help="the method's settings (JSON)")
    p.add_argument("--target", required=True)
    p.add_argument("--finetune", type=_json, required=True, help="the fine-tuning recipe (JSON)")
    p.add_argument("--base-model", required=True)
    p.add_argument("--base-identity", type=_json, required=True, help="the large network's run identity (JSON)")
    p.add_argument("--arm", default=PRUNED, choices=TUNED, help="pruned-long: the base is the long-trained one")
    p.add_argument("--out", required=True)
    p.set_defaults(job="prunestudy.jobs.oneshot:oneshot")


def _add_prune(sub) -> None:
    p = sub.add_parser("prune-chunk", help="run one chunk of an iterative method's prune-and-tune trajectory")
    _context(p)
    p.add_argument("--method", required=True, help="the iterative method (fisher, taylor, ...)")
    p.add_argument("--prune", type=_json, required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--input", required=True, help="the base model.pt or the previous chunk's state")
    p.add_argument("--base-identity", type=_json, help="chunk 0: the large network's run identity (JSON)")
    p.add_argument("--out-state", required=True)
    p.add_argument("--out-rows", required=True)
    p.add_argument("--out-record", required=True, help="the chunk's record: hashes of everything it wrote")
    p.set_defaults(job="prunestudy.jobs.prune:prune_chunk")

    p = sub.add_parser("trajectory", help="join chunk tables into one trajectory and sample it at every target")
    _context(p)
    p.add_argument("chunks", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--out-record", required=True, help="the trajectory's record (its hash)")
    p.add_argument("--prune", type=_json, required=True)
    p.add_argument("--targets", nargs="+", type=float, default=(), help="fractions of base params to sample at")
    p.add_argument("--arch-dirs", nargs="+", default=(), help="where each target's spec and metrics go, in order")
    p.set_defaults(job="prunestudy.jobs.prune:trajectory")


def _add_analysis(sub) -> None:
    p = sub.add_parser("latency", help="time every distinct network of an experiment, alone on the device")
    p.add_argument("metrics", nargs="+")
    p.add_argument("--latency", type=_json, required=True, help="the latency config slice (JSON)")
    _runtime(p)
    p.add_argument("--out", required=True)
    p.set_defaults(job="prunestudy.jobs.latency:latency")

    p = sub.add_parser("collect", help="one runs table from every metrics.json")
    p.add_argument("metrics", nargs="+")
    p.add_argument("--latency", required=True, help="the experiment's latency.csv")
    p.add_argument("--expect", type=_json, required=True, help="the identity of each metrics file, in order (JSON)")
    p.add_argument("--experiment", required=True, help="the experiment the table is of (shared bases included)")
    p.add_argument("--out", required=True)
    p.set_defaults(job="prunestudy.jobs.analysis:collect")

    p = sub.add_parser("compare", help="errors, statistics, consistency and reference tables of one experiment")
    p.add_argument("--runs", required=True)
    p.add_argument("--method", required=True, help="the experiment's pruning method (references match on it)")
    for name in ("analysis", "data", "model"):
        p.add_argument(f"--{name}", type=_json, required=True)
    p.add_argument("--out-dir", required=True)
    p.set_defaults(job="prunestudy.jobs.analysis:compare")

    p = sub.add_parser("claims", help="the claims table of the whole study (Holm over every experiment)")
    p.add_argument("--experiments", nargs="+", required=True)
    p.add_argument("--units", nargs="+", required=True, help="each experiment's seed-level units table (CSV)")
    p.add_argument("--trained", type=_json, required=True, help="the arms each experiment trains (JSON)")
    p.add_argument("--analysis", type=_json, required=True)
    p.add_argument("--data", type=_json, required=True, help="the data config slice: errors' resolution")
    p.add_argument("--out", required=True, help="the study's claims.csv (.md, .tex and .html beside it)")
    p.add_argument("--per-experiment", nargs="+", required=True, help="each experiment's claims.csv")
    p.set_defaults(job="prunestudy.jobs.analysis:claims")

    p = sub.add_parser("calibrate", help="the verdicts' error rates, simulated with the study's structure")
    p.add_argument("--claims", required=True, help="the study's claims.csv (its observed seed-level spread)")
    p.add_argument("--experiments", type=_json, required=True, help="the study's experiments (JSON)")
    p.add_argument("--analysis", type=_json, required=True)
    p.add_argument("--data", type=_json, required=True)
    p.add_argument("--out-dir", required=True, help="the study's results folder (tables/ and figures/ inside)")
    p.set_defaults(job="prunestudy.jobs.analysis:calibrate")

    p = sub.add_parser("figures", help="every figure, as PNG and PDF")
    p.add_argument("--runs", required=True)
    p.add_argument("--trajectories", nargs="+", default=(), help="an iterative method's trajectories")
    p.add_argument("--seeds", nargs="+", type=int, default=(), help="the seed of each trajectory, in order")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(job="prunestudy.jobs.analysis:figures")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prunestudy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_oneshot, _add_prune, _add_analysis):
        add(sub)
    return parser


def _job(path: str) -> Callable[..., None]:
    """The job function named ``module:function``, imported only now (an analysis job never loads torch)."""
    from importlib import import_module

    module, name = path.split(":")
    return getattr(import_module(module), name)


def dispatch(args: argparse.Namespace) -> None:
    """Call the command's job: a training job inside its process group (one process: a no-op); with a Context
    of the run when the command takes one, else with its options."""
    kwargs = {k: v for k, v in vars(args).items() if k not in ("job", "command")}
    if "processes" in kwargs:
        from prunestudy.jobs.common import data_parallel

        with data_parallel(kwargs["device"], kwargs.pop("processes")):
            dispatch(argparse.Namespace(**kwargs, job=args.job, command=args.command))
    elif "model" in kwargs and "seed" in kwargs:
        from prunestudy.jobs.common import Context

        ctx = Context(**{k: kwargs.pop(k) for k in CONTEXT})
        _job(args.job)(ctx, **kwargs)
    else:
        _job(args.job)(**kwargs)


def main(argv: list[str] | None = None) -> None:
    from prunestudy.jobs.common import start_logging

    args = build_parser().parse_args(argv)
    start_logging()
    t0 = time.perf_counter()
    try:
        dispatch(args)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        logging.getLogger("prunestudy").debug("traceback", exc_info=True)
        raise SystemExit(f"prunestudy {args.command}: error: {err}") from err
    logging.info("%s finished in %.1fs", args.command, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
