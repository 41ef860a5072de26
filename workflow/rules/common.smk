# Config validation, target lists and config slices. No rule logic lives here; every path comes from
# prunestudy.paths and every arm name from prunestudy.arms.
import json
import os
import sys

from prunestudy import arms, paths
from prunestudy.config import ConfigError, validate
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


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    seed=r"\d+",
    chunk=r"\d{3}",
    target=r"[0-9.e-]+",
    regime="|".join(arms.SCRATCH),


def slice_json(key):
    """A config slice as canonical JSON: the exact params a rule depends on."""
    return json.dumps(config[key], sort_keys=True, separators=(",", ":"))


def exp_json(key):
    """A slice of the job's experiment, as canonical JSON (a params function of the wildcards)."""
    return lambda wc: json.dumps(
        EXPERIMENTS[wc.experiment][key], sort_keys=True, separators=(",", ":")
    )


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


def chunk_input(wc):
    c = int(wc.chunk)
    if c == 0:
        return P.base_model(experiment=wc.experiment, seed=wc.seed)
    return P.chunk_state(
        experiment=wc.experiment, seed=wc.seed, chunk=paths.chunk_label(c - 1)
    )


def run_metrics(wc):
    """Every trained network's metrics.json of one experiment: the inputs of its analysis."""
    e = wc.experiment
    out = [P.base_metrics(experiment=e, seed=s) for s in SEEDS]
    for s in SEEDS:
        out += [P.arch_metrics(experiment=e, seed=s, target=t) for t in targets(e)]
        for regime in arms.SCRATCH:
            out += [
                P.scratch_metrics(experiment=e, regime=regime, target=t, seed=s)
                for t in targets(e)
            ]
        for kind in arms.FAMILY_ARMS:
            out += [
                P.family_metrics(experiment=e, kind=kind, member=m, seed=s)
                for m in members(e, kind)
            ]
    return out


def all_targets():
    out = []
    for e in EXPERIMENTS:
        out.append(P.runs(experiment=e))
        out += [P.table(experiment=e, table=t) for t in paths.TABLES]
        out += [P.figure(experiment=e, figure=f) for f in paths.FIGURES]
    return out
