# Config validation, target lists and config slices. No rule logic lives here; every path comes from
# prunestudy.paths and every arm name from prunestudy.arms.
import json
import os
import sys

from prunestudy import arms, paths
from prunestudy.config import ConfigError, base_name, validate
from prunestudy.methods import method
from prunestudy.stages import LOGIC_VERSIONS as LOGIC
from prunestudy.verdicts import VERDICT_RULE

try:
    validate(config)
except ConfigError as err:
    sys.exit(f"prunestudy: {err}")

config["verdict_rule"] = (
    VERDICT_RULE  # for the claims caption; not a setting, so after validation
)
P = paths.StudyPaths(f"{config['results']}/{config['study']}")
REFERENCES = config["analysis"]["references"]
if not os.path.isabs(REFERENCES) and not os.path.exists(REFERENCES):
    REFERENCES = os.path.join(
        workflow.basedir, REFERENCES
    )  # run from another --directory
config["analysis"]["references"] = REFERENCES
SEEDS = config["seeds"]
EXPERIMENTS = {e["name"]: e for e in config["experiments"]}
GPU = 0 if config["device"] == "cpu" else 1
label = paths.target_label


def kind(experiment):
    return method(EXPERIMENTS[experiment]["method"]).kind


def experiments_where(test):
    """A wildcard constraint: the experiments for which ``test(experiment config)`` holds."""
    names = [n for n, e in EXPERIMENTS.items() if test(e)]
    return "|".join(names) if names else "(?!)"


ITERATIVE_NAMES = [
    n for n, e in EXPERIMENTS.items() if method(e["method"]).kind == "iterative"
]
ITERATIVE = "|".join(ITERATIVE_NAMES) if ITERATIVE_NAMES else "(?!)"


def rule_name(experiment):
    """An experiment's name as part of a rule's name (a Python identifier)."""
    return "".join(ch if ch.isalnum() else "_" for ch in experiment)


STRUCTURED = experiments_where(
    lambda e: method(e["method"]).kind == "oneshot" and e["method"] != "magnitude"
)
UNSTRUCTURED = experiments_where(lambda e: e["method"] == "magnitude")
LONG = experiments_where(lambda e: e["long_base"])


def long_where(constraint):
    """The experiments of ``constraint`` that also run the blog's long-base control."""
    names = [
        n
        for n in constraint.split("|")
        if n in EXPERIMENTS and EXPERIMENTS[n]["long_base"]
    ]
    return "|".join(names) if names else "(?!)"


# the large networks: one per (model, regulariser), shared by experiments that train it the same way
BASES, BASE_OF = {}, {}
for _e in config["experiments"]:
    for _t in _e["targets"]:
        _name = base_name(_e, _t, config["data"])
        _m = method(_e["method"])
        _reg = _m.regulariser(_m.params(**_e["prune"]), _t)
        BASES[_name] = {
            "model": _m.base_options(_e["model"]),
            "regulariser": {"method": _m.name, **_reg} if _reg else {},
        }
        BASE_OF[_e["name"], label(_t)] = _name


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    base="|".join(BASES),
    seed=r"\d+",
    chunk=r"\d{3}",
    target=r"[A-Za-z0-9._-]+",
    regime="|".join(arms.SCRATCH),


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


def base_model(wc):
    """The large network the job's (experiment, target) prunes; any target, for an iterative method."""
    target = wc.target if "target" in wc.keys() else targets(wc.experiment)[0]
    return P.base_model(base=BASE_OF[wc.experiment, target], seed=wc.seed)


def chunks(experiment):
    e = EXPERIMENTS[experiment]
    n = method(e["method"]).params(**e["prune"]).chunks
    return [paths.chunk_label(c) for c in range(n)]


def targets(experiment):
    return [label(t) for t in EXPERIMENTS[experiment]["targets"]]


def members(experiment, kind):
    fam = EXPERIMENTS[experiment]["families"]
    values = fam["scaled"]["targets"] if kind == arms.SCALED else fam[kind]
    return [label(v) for v in values]


def scaled_source(wc):
    s = EXPERIMENTS[wc.experiment]["families"]["scaled"]
    seed = s["source_seed"] if s["source_seed"] is not None else SEEDS[0]
    return P.arch_spec(
        experiment=wc.experiment, seed=seed, target=label(s["source_budget"])
    )


def long_sources(wc):
    """Every pruned network of the experiment: the long base trains for their longest Scratch-B budget."""
    return [
        pruned_arch_path(wc.experiment, s, t)
        for s in SEEDS
        for t in targets(wc.experiment)
    ]


def pruned_arch_path(experiment, seed, target):
    """What Scratch-E/B retrain: the pruned spec, or the mask beside it for unstructured pruning."""
    masked = EXPERIMENTS[experiment]["method"] == "magnitude"
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


def run_metrics(wc):
    """Every trained network's metrics.json of one experiment: the inputs of its analysis."""
    e = wc.experiment
    bases = sorted({BASE_OF[e, t] for t in targets(e)})
    out = [P.base_metrics(base=b, seed=s) for b in bases for s in SEEDS]
    for s in SEEDS:
        out += [P.arch_metrics(experiment=e, seed=s, target=t) for t in targets(e)]
        for regime in arms.SCRATCH:
            out += [
                P.scratch_metrics(experiment=e, regime=regime, target=t, seed=s)
                for t in targets(e)
            ]
        if EXPERIMENTS[e]["long_base"]:
            out.append(f"{P.long_base_dir(experiment=e, seed=s)}/metrics.json")
            out += [
                f"{P.long_dir(experiment=e, seed=s, target=t)}/metrics.json"
                for t in targets(e)
            ]
        for kind_ in arms.FAMILY_ARMS:
            out += [
                P.family_metrics(experiment=e, kind=kind_, member=m, seed=s)
                for m in members(e, kind_)
            ]
    return out


def all_targets():
    out = []
    for e in EXPERIMENTS:
        out.append(P.runs(experiment=e))
        out += [P.table(experiment=e, table=t) for t in paths.TABLES]
        out += [P.figure(experiment=e, figure=f) for f in paths.figures(kind(e))]
    return out
