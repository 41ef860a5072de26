# Config validation, target lists and config slices. No rule logic lives here; every path comes from
# prunestudy.io.paths and every arm name from prunestudy.pruning.arms.
import json
import os
import sys
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError

from prunestudy.pruning import arms
from prunestudy.io import paths
from prunestudy.io.catalog import missing_files
from prunestudy.io.config import (
    ConfigError,
    apply_overrides,
    large_networks,
    load_references,
    validate,
)
from prunestudy.io import integrity
from prunestudy.methods import method
from prunestudy.methods.base import ITERATIVE, MASK, ONESHOT, SPEC
from prunestudy.io.records import identity
from prunestudy.io.stages import LOGIC_VERSIONS as LOGIC
from prunestudy.analysis.verdicts import HOLM_FAMILY, RESOLUTION_NOTE, VERDICT_RULE

# The embedded default applies only when no config file is given: a --configfile stands alone, every key it
# leaves out taking the schema's documented default (never the digits study's value).
if not workflow.overwrite_configfiles:
    _embedded = yaml.safe_load(
        (Path(workflow.basedir) / "config" / "config.yaml").read_text()
    )
    apply_overrides(_embedded, dict(config))
    config.clear()
    config.update(_embedded)
try:
    apply_overrides(config, workflow.config_settings.config or {})
    validate(config)
except ConfigError as err:
    sys.exit(f"prunestudy: {err}")

# for the report's captions and its appendix (the resolved config, every default filled in); not
# settings, so added after validation and after the appendix was dumped
REPORT_TEXT = {
    "verdict_rule": VERDICT_RULE,
    "holm_family": HOLM_FAMILY,
    "resolution_note": RESOLUTION_NOTE,
    "config_yaml": yaml.safe_dump(dict(config), sort_keys=False),
}
config.update(REPORT_TEXT)


onstart:
    # a real run only (a dry run may plan a CIFAR study on a machine without the data)
    if (problem := missing_files(config["data"])) is not None:
        sys.exit(f"prunestudy: {problem}")
    if (
        config["gpu"]["nodes"] > 1
        and getattr(workflow.executor_plugin, "name", None) != "slurm"
    ):
        sys.exit(
            f"prunestudy: config key 'gpu.nodes' is {config['gpu']['nodes']}: a job spread over nodes starts "
            "its processes with srun inside a SLURM allocation; submit with --profile workflow/profiles/slurm "
            "or set gpu.nodes to 1"
        )


P = paths.StudyPaths(f"{config['results']}/{config['study']}")
REFERENCES = config["analysis"]["references"]
if not os.path.isabs(REFERENCES) and not os.path.exists(REFERENCES):
    REFERENCES = os.path.join(
        workflow.basedir, REFERENCES
    )  # run from another --directory
config["analysis"]["references"] = REFERENCES
try:
    load_references(REFERENCES)
except ConfigError as err:
    sys.exit(f"prunestudy: {err}")
SEEDS = config["seeds"]
EXPERIMENTS = {e["name"]: e for e in config["experiments"]}
TRAINED = {n: sorted(arms.trained_arms(e)) for n, e in EXPERIMENTS.items()}
GPU = 0 if config["device"] == "cpu" else 1
try:  # the latency job asks for every core of a workstation; a cluster executor sets no total
    ALL_CORES = workflow.cores
except WorkflowError:
    ALL_CORES = 1
# how many jobs share a GPU: scheduling, not results, so a resource (no rerun) rather than a param
JOBS_PER_GPU = config["gpu"]["jobs_per_gpu"]
COMPILE = str(
    config["gpu"]["compile"]
).lower()  # shapes the arithmetic on CUDA: a param
label = paths.target_label


def kind(experiment):
    return method(EXPERIMENTS[experiment]["method"]).kind


def experiments_where(test):
    """A wildcard constraint: the experiments for which ``test(experiment config)`` holds."""
    names = [n for n, e in EXPERIMENTS.items() if test(e)]
    return "|".join(names) if names else "(?!)"


ITERATIVE_NAMES = [n for n in EXPERIMENTS if kind(n) == ITERATIVE]
ITERATIVE_EXPERIMENTS = "|".join(ITERATIVE_NAMES) if ITERATIVE_NAMES else "(?!)"


def rule_name(experiment):
    """An experiment's name as part of a rule's name (a Python identifier)."""
    return "".join(ch if ch.isalnum() else "_" for ch in experiment)


def produces(experiment):
    """What the experiment's method hands the scratch arms: a pruned spec, or a mask beside the same one."""
    return method(EXPERIMENTS[experiment]["method"]).produces


ONESHOT_NAMES = [n for n in EXPERIMENTS if kind(n) == ONESHOT]
STRUCTURED = "|".join(n for n in ONESHOT_NAMES if produces(n) == SPEC) or "(?!)"
UNSTRUCTURED = "|".join(n for n in ONESHOT_NAMES if produces(n) == MASK) or "(?!)"
LONG = experiments_where(lambda e: e["long_base"])
LOTTERY = experiments_where(lambda e: e["lottery"]["lrs"])


def long_where(constraint):
    """The experiments of ``constraint`` that also run the blog's long-base control."""
    names = [
        n
        for n in constraint.split("|")
        if n in EXPERIMENTS and EXPERIMENTS[n]["long_base"]
    ]
    return "|".join(names) if names else "(?!)"


# the large networks: one per (model, regulariser), shared by experiments that train it the same way
BASES, BASE_OF = large_networks(config)


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    base="|".join(BASES),
    seed=r"\d+",
    chunk=r"\d{3}",
    target=r"[A-Za-z0-9._-]+",
    regime="|".join(arms.SCRATCH),
    guide="|".join(arms.GUIDE),
    lr=r"[0-9.e+-]+",


# --- The template every job rule shares -----------------------------------------------------------
ENV = "../envs/prunestudy.yaml"
# how many jobs share a GPU is scheduling, not results: a resource (no rerun), never a param
# (cpus_per_task: what a cluster allocates, the job's threads; a workstation ignores it)
GPU_JOB = {"gpu": GPU, "jobs_per_gpu": JOBS_PER_GPU, "cpus_per_task": config["threads"]}
# A job that trains may be data-parallel (gpu.per_job processes, one GPU each). On one node torchrun
# starts its processes inside one task that takes per_job whole GPUs (workstation slots or SLURM --gpus,
# with --nodes 1) and a core budget per process. Over gpu.nodes nodes (SLURM only) the allocation holds
# per_job / nodes GPUs and tasks on each node, and srun starts one process per task; the plugin runs an
# `mpi` job's command as it is, without an srun of its own, on the allocation's first node, where rank 0
# runs (so it is the rendezvous). The launcher is a resource, not shell text: Snakemake reruns a job whose
# rule's shell text changed, and gpu.nodes must rerun nothing. prune_chunk and latency stay single-process.
PER_JOB = config["gpu"]["per_job"]
NODES = config["gpu"]["nodes"]
PER_NODE = PER_JOB // NODES
FIT_THREADS = config["threads"] * PER_NODE
if NODES > 1:
    FIT_JOB = {
        **{k: v for k, v in GPU_JOB.items() if k != "gpu"},
        "gres": f"gpu:{PER_NODE}",
        "nodes": NODES,
        "tasks_per_node": PER_NODE,
        "mpi": "srun",
        "launch": "MASTER_ADDR=$(hostname) srun --kill-on-bad-exit=1 "
        f"--ntasks-per-node {PER_NODE} --cpus-per-task {config['threads']}",
    }
else:
    FIT_JOB = {
        **GPU_JOB,
        "gpu": GPU * PER_JOB,
        "cpus_per_task": FIT_THREADS,
        **(
            {
                "nodes": 1,
                "launch": f"torchrun --standalone --nproc-per-node {PER_JOB} --no-python",
            }
            if PER_JOB > 1
            else {}
        ),
    }
LAUNCH = "{resources.launch} " if PER_JOB > 1 else ""
# the options of a job that computes: where, with how many threads, and its run's context
CONTEXT = "--experiment {params.experiment} --seed {wildcards.seed} --data {params.data:q} --model {params.model:q}"
RUN = (
    CONTEXT
    + " --device {params.device} --threads {params.threads} --jobs-per-gpu {resources.jobs_per_gpu} "
    "--compile {params.compile}"
)


def run_params(stage, model=None, experiment=None, fits=False):
    """The params of a job that computes: its stage's logic version, the data slice, the runtime settings,
    and the experiment and model options (of the job's experiment unless given); for a job that trains
    (``fits``), the processes it runs as (they shape its BN batches, so a param)."""
    return {
        "logic": LOGIC[stage],
        "data": slice_json("data"),
        "threads": config["threads"],
        "compile": COMPILE,
        "device": config["device"],
        "experiment": experiment or (lambda wc: wc.experiment),
        "model": model or exp_json("model"),
        **({"processes": PER_JOB} if fits else {}),
    }


def flags(**options):
    """Command-line options from keyword values, shell-quoted (dicts and lists of identities as JSON, lists of
    paths spread); None and empty values are left out. Every rule builds its per-arm options with it.
    """
    import shlex

    out = []
    for key, value in options.items():
        if value is None or value == {} or value == []:
            continue
        if isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict)
        ):
            value = canonical(value)
        values = value if isinstance(value, list) else [value]
        out.append(
            f"--{key.replace('_', '-')} "
            + " ".join(shlex.quote(str(v)) for v in values)
        )
    return " ".join(out)


def slice_json(key):
    """A config slice as canonical JSON: the exact params a rule depends on."""
    return json.dumps(config[key], sort_keys=True, separators=(",", ":"))


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def exp_json(key):
    """A slice of the job's experiment, as canonical JSON (a params function of the wildcards)."""
    return lambda wc: canonical(EXPERIMENTS[wc.experiment][key])


def base_json(key):
    """A slice of the job's large network (model options or regulariser), as canonical JSON."""
    return lambda wc: canonical(BASES[wc.base][key])


def base_of(wc):
    """The large network the job's (experiment, target) prunes; any target, for an iterative method."""
    target = wc.target if "target" in wc.keys() else targets(wc.experiment)[0]
    return BASE_OF[wc.experiment, target]


def base_model(wc):
    return P.base_model(base=base_of(wc), seed=wc.seed)


def base_identity(wc):
    """The run the job's large network must be: its base name (method and regulariser included) and seed."""
    return identity(base_of(wc), arms.BASE, int(wc.seed), None)


def chunks(experiment):
    e = EXPERIMENTS[experiment]
    n = method(e["method"]).params(**e["prune"]).chunks
    return [paths.chunk_label(c) for c in range(n)]


def targets(experiment):
    return [label(t) for t in EXPERIMENTS[experiment]["targets"]]


def members(experiment, arm):
    fam = EXPERIMENTS[experiment]["families"]
    values = fam["scaled"]["targets"] if arm == arms.SCALED else fam[arm]
    return [label(v) for v in values]


def scaled_origin(experiment):
    """The (seed, target) whose pruned spec the scaled family scales."""
    s = EXPERIMENTS[experiment]["families"]["scaled"]
    seed = s["source_seed"] if s["source_seed"] is not None else SEEDS[0]
    return seed, label(s["source_target"])


def scaled_source(wc):
    seed, target = scaled_origin(wc.experiment)
    return {
        "source": P.arch_spec(experiment=wc.experiment, seed=seed, target=target),
        "record": P.arch_metrics(experiment=wc.experiment, seed=seed, target=target),
    }


def long_sources(wc):
    """Every pruned network of the experiment: the long base trains for their longest Scratch-B budget."""
    return [
        pruned_arch_path(wc.experiment, s, t)
        for s in SEEDS
        for t in targets(wc.experiment)
    ]


def pruned_arch_path(experiment, seed, target):
    """What Scratch-E/B retrain: the pruned spec, or the mask beside it for unstructured pruning."""
    masked = produces(experiment) == MASK
    return (P.arch_mask if masked else P.arch_spec)(
        experiment=experiment, seed=seed, target=target
    )


def chunk_input(wc):
    c = int(wc.chunk)
    if c == 0:
        return base_model(wc)
    return P.chunk_state(
        experiment=wc.experiment, seed=wc.seed, chunk=paths.chunk_label(c - 1)
    )


def run_slots(experiment):
    """Every trained network of one experiment: (metrics.json, the run it must be), the analysis inputs."""
    e = experiment
    bases = sorted({BASE_OF[e, t] for t in targets(e)})
    out = [
        (P.base_metrics(base=b, seed=s), identity(b, arms.BASE, s, None))
        for b in bases
        for s in SEEDS
    ]
    for s in SEEDS:
        for t in targets(e):
            out.append(
                (
                    P.arch_metrics(experiment=e, seed=s, target=t),
                    identity(e, arms.PRUNED, s, t),
                )
            )
            for regime, arm in arms.SCRATCH.items():
                path = P.scratch_metrics(experiment=e, regime=regime, target=t, seed=s)
                out.append((path, identity(e, arm, s, t)))
        if EXPERIMENTS[e]["long_base"]:
            long_base = f"{P.long_base_dir(experiment=e, seed=s)}/metrics.json"
            out.append((long_base, identity(e, arms.BASE_LONG, s, None)))
            for t in targets(e):
                path = f"{P.long_dir(experiment=e, seed=s, target=t)}/metrics.json"
                out.append((path, identity(e, arms.PRUNED_LONG, s, t)))
        for guide in (g for g in arms.GUIDE if g in TRAINED[e]):
            for t in targets(e):
                path = P.guide_metrics(experiment=e, guide=guide, target=t, seed=s)
                out.append((path, identity(e, guide, s, t)))
        for arm, lr, t in lottery_runs(e):
            path = P.lottery_metrics(experiment=e, arm=arm, lr=lr, target=t, seed=s)
            out.append((path, identity(e, arm, s, paths.at_lr(t, lr))))
        for arm in arms.FAMILY_ARMS:
            for m in members(e, arm):
                path = P.family_metrics(experiment=e, arm=arm, member=m, seed=s)
                out.append((path, identity(e, arm, s, m)))
    return out


def lottery_runs(experiment):
    """The (lottery arm, learning rate label, target) of every lottery run of one seed."""
    lrs = EXPERIMENTS[experiment]["lottery"]["lrs"]
    return [
        (a, label(lr), t)
        for a in arms.LOTTERY
        for lr in lrs
        for t in targets(experiment)
    ]


def beside(experiment, arm):
    """What the job of a run writes next to its metrics.json."""
    if arm == arms.BASE:
        return ("model.pt", "init.pt")
    if arm not in arms.TUNED:
        return ("model.pt",)
    if kind(experiment) == ITERATIVE:
        return ("spec.json",)
    masked = produces(experiment) == MASK
    return ("spec.json", "model.pt", *(("mask.pt",) if masked else ()))


def vouchers():
    """Every record the study's config expects, with the run each must be (what the audit checks)."""
    out = {}
    for e in EXPERIMENTS:
        out.update({path: ident for path, ident in run_slots(e)})
        for s in SEEDS if kind(e) == ITERATIVE else ():
            for c in chunks(e):
                ident = {"experiment": e, "seed": s, "chunk": int(c)}
                out[P.chunk_record(experiment=e, seed=s, chunk=c)] = ident
            out[P.trajectory_record(experiment=e, seed=s)] = {
                "experiment": e,
                "seed": s,
            }
    return [integrity.Voucher(Path(p), ident) for p, ident in out.items()]


def artefacts():
    """Every file a run leaves, intermediate ones included: the run asks for each, so one that goes missing
    (deleted, or moved aside by the audit) is rebuilt, and with it everything made from it.
    """
    out = []
    for e in EXPERIMENTS:
        for path, ident in run_slots(e):
            folder = os.path.dirname(path)
            out += [path, *(f"{folder}/{n}" for n in beside(e, ident["arm"]))]
        for s in SEEDS if kind(e) == ITERATIVE else ():
            for c in chunks(e):
                out += [
                    f(experiment=e, seed=s, chunk=c)
                    for f in (P.chunk_state, P.chunk_rows, P.chunk_record)
                ]
            out += [
                P.trajectory(experiment=e, seed=s),
                P.trajectory_record(experiment=e, seed=s),
            ]
        out.append(P.latency(experiment=e))
    return list(dict.fromkeys(out))


def run_metrics(wc):
    return [path for path, _ in run_slots(wc.experiment)]


def run_expect(wc):
    """The identity each of ``run_metrics`` must carry, in the same order (collect checks them)."""
    return canonical([ident for _, ident in run_slots(wc.experiment)])


def pruned_source(wc):
    """What a scratch arm retrains and the record its pruning job wrote beside it."""
    return {
        "source": pruned_arch_path(wc.experiment, wc.seed, wc.target),
        "record": P.arch_metrics(
            experiment=wc.experiment, seed=wc.seed, target=wc.target
        ),
    }


def lottery_sources(wc):
    """What a lottery arm retrains (as a scratch arm does) and, for the winning ticket, the large network's
    initial weights with the record its training wrote beside them."""
    out = pruned_source(wc)
    if wc.arm == arms.WINNING_TICKET:
        base = {"base": base_of(wc), "seed": wc.seed}
        out |= {"init": P.base_init(**base), "init_record": P.base_metrics(**base)}
    return out


def guide_sources(wc):
    """Every pruning seed's spec at the job's target, and the record each was written beside."""
    return {
        "sources": [
            P.arch_spec(experiment=wc.experiment, seed=s, target=wc.target)
            for s in SEEDS
        ],
        "records": [
            P.arch_metrics(experiment=wc.experiment, seed=s, target=wc.target)
            for s in SEEDS
        ],
    }


def source_expect(experiment, seed, target):
    """The run a retrained architecture comes from: the pruned network of that seed and target."""
    return identity(experiment, arms.PRUNED, int(seed), target)


def all_targets():
    out = [*artefacts(), P.study_table(table="claims")]
    out += [P.study_table(table=t) for t in paths.CALIBRATION_TABLES]
    out += [P.study_figure(figure=f) for f in paths.STUDY_FIGURES]
    for e in EXPERIMENTS:
        out += [P.runs(experiment=e), P.runs_html(experiment=e)]
        out += [P.table(experiment=e, table=t) for t in paths.TABLES]
        figures = paths.figures(iterative=kind(e) == ITERATIVE)
        out += [P.figure(experiment=e, figure=f) for f in figures]
    return out


# Before planning: every record intact, the run its path expects, vouching for unchanged files; what fails is
# moved into the study's quarantine folder, so that the plan rebuilds it (a dry run only reports it).
if workflow.is_main_process and integrity.audits(sys.argv):
    _repair = integrity.repairs(sys.argv)
    _locked = any(Path(".snakemake/locks").glob("*"))
    _damage = integrity.audit(vouchers(), P.root, repair=_repair, locked=_locked)
    if _damage:
        print(integrity.describe(_damage, P.root, _repair), file=sys.stderr)
