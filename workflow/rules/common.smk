# Config validation, target lists and config slices. No rule logic lives here.
import json
import math
import os
import sys

from prunestudy.config import ConfigError, validate
from prunestudy.stages import LOGIC_VERSIONS as LOGIC

try:
    validate(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as err:
    sys.exit(f"prunestudy: {err}")

R = f"{config['results']}/{config['study']}"
REFERENCES = config["analysis"]["references"]
if not os.path.isabs(REFERENCES) and not os.path.exists(REFERENCES):
    REFERENCES = os.path.join(
        workflow.basedir, REFERENCES
    )  # run from another --directory
config["analysis"]["references"] = REFERENCES
SEEDS = config["seeds"]
CHUNKS = [
    f"{c:03d}"
    for c in range(math.ceil(config["prune"]["max_prunes"] / config["prune"]["chunk"]))
]
BUDGETS = [f"{b:g}" for b in config["budgets"]]
GPU = 0 if config["device"] == "cpu" else 1
_scaled = config["families"]["scaled"]
SCALED_SEED = _scaled["source_seed"] if _scaled["source_seed"] is not None else SEEDS[0]
SCALED_SOURCE = (
    f"{R}/arch/seed{SCALED_SEED}/budget{_scaled['source_budget']:g}/spec.json"
)
FAMILIES = {
    "width": [f"{k:g}" for k in config["families"]["width"]],
    "bottleneck": [f"{z:g}" for z in config["families"]["bottleneck"]],
    "scaled": [f"{t:g}" for t in _scaled["targets"]],
}
TABLES = ["claims", "budget_stats", "paired", "families", "references"]
FIGURES = [
    "error_vs_params",
    "error_vs_flops",
    "error_vs_latency",
    "budget_arms",
    "channel_profile",
    "trajectory_heatmap",
    "consistency",
]


wildcard_constraints:
    seed=r"\d+",
    chunk=r"\d{3}",
    budget=r"[0-9.e-]+",
    regime="E|B",


def slice_json(key):
    """A config slice as canonical JSON: the exact params a rule depends on."""
    return json.dumps(config[key], sort_keys=True, separators=(",", ":"))


def chunk_input(wc):
    c = int(wc.chunk)
    if c == 0:
        return f"{R}/base/seed{wc.seed}/model.pt"
    return f"{R}/prune/seed{wc.seed}/chunk{c - 1:03d}.state.pt"


def run_metrics():
    """Every trained network's metrics.json: the inputs of the analysis."""
    out = expand(f"{R}/base/seed{{seed}}/metrics.json", seed=SEEDS)
    out += expand(
        f"{R}/arch/seed{{seed}}/budget{{budget}}/metrics.json",
        seed=SEEDS,
        budget=BUDGETS,
    )
    out += expand(
        f"{R}/scratch/{{regime}}/budget{{budget}}/seed{{seed}}/metrics.json",
        regime=["E", "B"],
        budget=BUDGETS,
        seed=SEEDS,
    )
    for kind, members in FAMILIES.items():
        out += expand(
            f"{R}/family/{kind}/{{member}}/seed{{seed}}/metrics.json",
            member=members,
            seed=SEEDS,
        )
    return out


def all_targets():
    return (
        [f"{R}/runs.csv"]
        + expand(f"{R}/tables/{{table}}.csv", table=TABLES)
        + expand(f"{R}/figures/{{figure}}.png", figure=FIGURES)
    )
