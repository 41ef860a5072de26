# Config validation, target lists and config slices. No rule logic lives here.
import json
import math
import sys

from prunestudy.config import ConfigError, validate

try:
    validate(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as err:
    sys.exit(f"prunestudy: {err}")

R = f"{config['results']}/{config['study']}"
SEEDS = config["seeds"]
CHUNKS = [f"{c:03d}" for c in range(math.ceil(config["prune"]["max_prunes"] / config["prune"]["chunk"]))]
BUDGETS = [f"{b:g}" for b in config["budgets"]]
GPU = 0 if config["device"] == "cpu" else 1
_scaled = config["families"]["scaled"]
SCALED_SEED = _scaled["source_seed"] if _scaled["source_seed"] is not None else SEEDS[0]
SCALED_SOURCE = f"{R}/arch/seed{SCALED_SEED}/budget{_scaled['source_budget']:g}/spec.json"
FAMILIES = {
    "width": [f"{k:g}" for k in config["families"]["width"]],
    "bottleneck": [f"{z:g}" for z in config["families"]["bottleneck"]],
    "scaled": [f"{t:g}" for t in _scaled["targets"]],
}


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
    out += expand(f"{R}/arch/seed{{seed}}/budget{{budget}}/metrics.json", seed=SEEDS, budget=BUDGETS)
    out += expand(
        f"{R}/scratch/{{regime}}/budget{{budget}}/seed{{seed}}/metrics.json",
        regime=["E", "B"],
        budget=BUDGETS,
        seed=SEEDS,
    )
    for kind, members in FAMILIES.items():
        out += expand(f"{R}/family/{kind}/{{member}}/seed{{seed}}/metrics.json", member=members, seed=SEEDS)
    return out


def all_targets():
    return run_metrics() + expand(f"{R}/prune/seed{{seed}}/trajectory.csv", seed=SEEDS)
