"""Config validation: JSON Schema with defaults, then the checks a schema cannot express.

The Snakefile calls :func:`validate` before it builds the DAG, so a bad config stops the run before
any job with one message that names the key and what is allowed. Validation also fills each
experiment's method settings from the method's hyper-parameter dataclass, the one place their
defaults live. Torch-free, so that every Snakemake start stays fast.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, fields
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from prunestudy.arch import ArchSpec, build_spec
from prunestudy.io.catalog import DATASETS, FOLDERS, held_out
from prunestudy.io.options import OptionError
from prunestudy.io.paths import target_label
from prunestudy.methods import method
from prunestudy.methods.base import ITERATIVE, MASK, ONESHOT
from prunestudy.pruning.budgets import most_removable

SCHEMA = files("prunestudy.io") / "config.schema.yaml"
REFERENCES_SCHEMA = files("prunestudy.io") / "references.schema.yaml"

# keys that once existed, and why they are gone
RETIRED = {
    ("analysis", "bootstrap_resamples"): "intervals are t-based over seeds now (a percentile bootstrap of a "
    "handful of seeds is not a 95% interval); remove the key",
}
# top-level keys of the one-experiment config, and where each went
MOVED = {
    "model": "experiments[].model (with 'family: wrn')",
    "prune": "experiments[].prune",
    "budgets": "experiments[].targets",
    "families": "experiments[].families",
}


class ConfigError(ValueError):
    """A config value that is not allowed; the message names the key."""


def _with_defaults(cls):
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(cls, {"properties": properties})


_Filling = _with_defaults(Draft202012Validator)


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Give ``--config`` overrides their YAML types in ``config``, in place.

    Snakemake parses a top-level ``--config key=value`` as a number or a boolean, but every value inside
    ``key={...}`` or ``key=[...]`` as text (``train={lr: 0.2}`` gave ``'0.2'``). Each text value of an
    override is read again as YAML, so nested overrides mean what they say.
    """

    def typed(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: typed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        return yaml.safe_load(value) if isinstance(value, str) and value.strip() else value

    def merge(into: dict[str, Any], changes: dict[str, Any]) -> None:
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = typed(value)

    merge(config, overrides)


def _key(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out.lstrip(".") or "<top level>"


def load_schema(path: str | Path | None = None) -> dict[str, Any]:
    """The config schema, its family and method enums taken from the registries (a new family or method is
    one registry line, never a schema edit)."""
    from prunestudy.arch import FAMILIES
    from prunestudy.methods import METHODS

    schema = yaml.safe_load(Path(path).read_text() if path else SCHEMA.read_text())
    experiment = schema["properties"]["experiments"]["items"]["properties"]
    experiment["model"]["properties"]["family"]["enum"] = sorted(FAMILIES)
    experiment["method"]["enum"] = sorted(METHODS)
    return schema


def validate(config: dict[str, Any], schema_path: str | Path | None = None) -> dict[str, Any]:
    """Fill defaults into ``config`` in place, check it, and return it; raise :class:`ConfigError`."""
    moved = sorted(set(MOVED) & set(config))
    if moved:
        raise ConfigError(
            f"config key '{moved[0]}' is no longer top-level: a study is now a list of experiments. "
            + "; ".join(f"'{k}' went to {MOVED[k]}" for k in moved)
            + " (see config/README.md and config/config.yaml)"
        )
    for (section, key), why in RETIRED.items():
        if key in (config.get(section) or {}):
            raise ConfigError(f"config key '{section}.{key}' is no longer used: {why}")
    schema = load_schema(schema_path)
    errors = sorted(_Filling(schema).iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        e = errors[0]
        allowed = e.schema.get("description", "") if isinstance(e.schema, dict) else ""
        raise ConfigError(f"config key '{_key(e.path)}': {e.message}" + (f" (expected: {allowed})" if allowed else ""))
    _check_semantics(config)
    return config


def load_references(path: str | Path) -> list[dict[str, Any]]:
    """The published numbers in ``path``, checked against their schema; every error names the file and entry."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot be read as YAML ({err})") from err
    schema = yaml.safe_load(REFERENCES_SCHEMA.read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(map(str, e.path)))
    if errors:
        e = errors[0]
        raise ConfigError(f"{path}: entry '{_key(e.path)}': {e.message}")
    return data["references"]


def base_spec(model: dict[str, Any], data: dict[str, Any]) -> ArchSpec:
    """The experiment's large network, from its ``model`` options and the dataset's shape: for an ImageFolder,
    the crop the network sees (``data.imagefolder.crop``), which its FLOPs are counted at."""
    i = DATASETS[data["name"]]
    size = data.get("imagefolder", {}).get("crop", i.image_size) if data["name"] in FOLDERS else i.image_size
    return build_spec(model, num_classes=i.num_classes, in_channels=i.in_channels, image_size=size)


def _check_unique(values: list[float | str], key: str) -> None:
    labels = [target_label(v) for v in values]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"config key '{key}': values {dup} repeat once written as they are in result paths")


def _check_milestones(r: dict[str, Any], key: str) -> None:
    """Milestones are a set of epochs: sorted here (before any hash), refused when repeated or too late."""
    if len(set(r["milestones"])) != len(r["milestones"]):
        raise ConfigError(f"config key '{key}.milestones': {r['milestones']} repeats an epoch")
    r["milestones"] = sorted(r["milestones"])
    late = [m for m in r["milestones"] if m >= r["epochs"]]
    if r["schedule"] == "multistep" and late:
        raise ConfigError(f"config key '{key}.milestones': {late} not below {key}.epochs={r['epochs']}")


def _catalog_describes(data: dict[str, Any]) -> bool:
    """Whether the catalog's image counts describe the data: always, except for an ImageFolder whose training
    folder holds another number of classes than the catalog's (an ImageNet subset, or a test's tiny folder),
    which its loader split-checks when the first job reads it (naming data.val_size). One directory listing:
    cheap enough for every start, where counting 1.28M files would not be."""
    train = Path(data["root"]) / "train"
    if data["name"] not in FOLDERS or not train.is_dir():
        return True
    return sum(p.is_dir() for p in train.iterdir()) == DATASETS[data["name"]].num_classes


def _check_splits(data: dict[str, Any]) -> None:
    """Every split keeps at least one image of every class (the stratified split floors each class's quota)."""
    if not _catalog_describes(data):
        return
    info = DATASETS[data["name"]]
    n, rarest = info.size, info.smallest_class
    keys = (["test_size"] if data["name"] == "digits" else []) + ["val_size"]
    for key in keys:
        try:
            out = held_out(n, data[key])
        except ValueError as err:
            raise ConfigError(f"config key 'data.{key}': {err}") from err
        quota = rarest * out // n  # the rarest class's share of the split, rounded down
        if quota < 1 or rarest - quota - 1 < 1:
            raise ConfigError(
                f"config key 'data.{key}': {data[key]} takes {out} of the {n} images of {data['name']}; every "
                f"split needs an image of each of its {info.num_classes} classes (the rarest has {rarest}), "
                f"so take between {-(-n // rarest)} and {n - 2 * n // rarest} images"
            )
        n, rarest = n - out, rarest - quota - 1


def _check_data_parallel(c: dict[str, Any]) -> None:
    """A data-parallel job splits each batch evenly over its processes, one GPU each."""
    n = c["gpu"]["per_job"]
    _check_nodes(n, c["gpu"]["nodes"])
    if n == 1:
        return
    if c["device"] == "cpu":
        raise ConfigError(f"config key 'gpu.per_job': {n} processes of one job need a GPU each; device is cpu")
    if c["gpu"]["jobs_per_gpu"] > 1:
        raise ConfigError(
            f"config key 'gpu.per_job': a job of {n} processes takes whole GPUs; set gpu.jobs_per_gpu to 1 "
            f"(it is {c['gpu']['jobs_per_gpu']}): sharing a GPU between jobs and spreading one job over GPUs exclude "
            "each other"
        )
    recipes = {
        "train": c["train"],
        **{f"experiments[{i}].finetune": e["finetune"] for i, e in enumerate(c["experiments"])},
    }
    for key, r in recipes.items():
        if r["batch_size"] % n:
            raise ConfigError(
                f"config key '{key}.batch_size': {r['batch_size']} images do not split evenly over gpu.per_job={n} "
                "processes"
            )


def _check_nodes(per_job: int, nodes: int) -> None:
    """A job spread over nodes has the same number of GPUs on each, and at least two: the SLURM executor
    plugin starts a multi-task job with ``--ntasks-per-node``, which it refuses below 2."""
    if nodes == 1:
        return
    if per_job % nodes or per_job // nodes < 2:
        raise ConfigError(
            f"config key 'gpu.nodes': {nodes} nodes cannot each hold an equal share of at least 2 of the "
            f"gpu.per_job={per_job} processes; set gpu.per_job to a multiple of gpu.nodes of at least "
            f"{2 * nodes}, or gpu.nodes to 1"
        )


def _check_semantics(c: dict[str, Any]) -> None:
    _check_splits(c["data"])
    _check_data_parallel(c)
    _check_milestones(c["train"], "train")
    names = [e["name"] for e in c["experiments"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key 'experiments': names must be unique, got {names}")
    for i, e in enumerate(c["experiments"]):
        _check_experiment(e, f"experiments[{i}]", c)


def _method_params(e: dict[str, Any], at: str) -> Any:
    """The method's hyper-parameters from ``prune``: known keys, each within the bounds its dataclass declares."""
    cls = method(e["method"]).params
    known = {f.name for f in fields(cls)}
    for key in e["prune"]:
        if key not in known:
            raise ConfigError(
                f"config key '{at}.prune.{key}': not a setting of {e['method']} (those are {sorted(known)})"
            )
    try:
        return cls(**e["prune"])
    except OptionError as err:
        raise ConfigError(f"config key '{at}.prune.{err.key}': {err.message}") from err
    except ValueError as err:
        raise ConfigError(f"config key '{at}.prune': {err}") from err


def _check_experiment(e: dict[str, Any], at: str, c: dict[str, Any]) -> None:
    try:
        base = base_spec(method(e["method"]).base_options(e["model"]), c["data"])
    except OptionError as err:
        raise ConfigError(f"config key '{at}.model.{err.key}': {err.message}") from err
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key '{at}.model': {err}") from err
    params = _method_params(e, at)
    e["prune"] = asdict(params)
    _check_unique(e["targets"], f"{at}.targets")
    m = method(e["method"])
    try:
        m.check(params, base, e["targets"])
    except OptionError as err:
        raise ConfigError(f"config key '{at}.{err.key}': {err.message}") from err
    except ValueError as err:
        raise ConfigError(f"config key '{at}.targets': {err}") from err
    if m.kind == ITERATIVE:
        _check_trajectory(e, at, base)
    if e["long_base"] and (m.kind != ONESHOT or len({base_name(e, t, c["data"]) for t in e["targets"]}) > 1):
        raise ConfigError(
            f"config key '{at}.long_base': the long-base control needs a one-shot method whose large network "
            f"does not depend on the target ({m.name} is {m.kind}{'' if m.kind != ONESHOT else ', per target'})"
        )
    _check_unique(e["lottery"]["lrs"], f"{at}.lottery.lrs")
    inexact = [lr for lr in e["lottery"]["lrs"] if float(target_label(float(lr))) != lr]
    if inexact:
        raise ConfigError(
            f"config key '{at}.lottery.lrs': {inexact} do not survive being written in result paths (%g: six "
            "significant digits); give each rate in at most six"
        )
    if e["lottery"]["lrs"] and m.kind != ONESHOT:
        raise ConfigError(
            f"config key '{at}.lottery.lrs': the lottery-ticket comparison retrains a network pruned once from "
            f"the large network's initial weights; {m.name} is {m.kind}"
        )
    if (e["guided"] or e["guided_layer"]) and m.produces == MASK:
        raise ConfigError(
            f"config key '{at}.{'guided' if e['guided'] else 'guided_layer'}': guided architectures average the "
            "widths of pruned runs; "
            f"{m.name} pruning keeps every width (it prunes weights), so there is nothing to average"
        )
    _check_milestones(e["finetune"], f"{at}.finetune")
    _check_families(e, at, c)


def _check_trajectory(e: dict[str, Any], at: str, base: ArchSpec) -> None:
    prune = e["prune"]
    if prune["max_prunes"] > base.prunable_channels:
        raise ConfigError(
            f"config key '{at}.prune.max_prunes': {prune['max_prunes']} exceeds the {base.prunable_channels} "
            f"prunable channels of {base.spec_id}"
        )
    most = most_removable(base, prune["max_prunes"])
    lowest = 1 - most / base.param_count()
    if min(e["targets"]) < lowest:
        raise ConfigError(
            f"config key '{at}.targets': {min(e['targets'])} is out of reach: {prune['max_prunes']} prunes "
            f"(prune.max_prunes) take away at most {most} of the {base.param_count()} parameters of "
            f"{base.spec_id}, leaving at least {lowest:.3f} of them; raise prune.max_prunes or drop the target"
        )
    floor = prune["param_floor"]
    if floor and min(e["targets"]) < floor:
        raise ConfigError(
            f"config key '{at}.targets': {min(e['targets'])} is below prune.param_floor={floor}, "
            "so no trajectory step can reach it"
        )


def _check_families(e: dict[str, Any], at: str, c: dict[str, Any]) -> None:
    fam = e["families"]
    for kind in ("width", "bottleneck"):
        _check_unique(fam[kind], f"{at}.families.{kind}")
        for v in fam[kind]:
            try:
                member_spec(e["model"], c["data"], kind, v)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"config key '{at}.families.{kind}': member {v} cannot be built: {err}") from err
    scaled = fam["scaled"]
    _check_unique(scaled["targets"], f"{at}.families.scaled.targets")
    if scaled["targets"] and scaled["source_target"] not in e["targets"]:
        raise ConfigError(
            f"config key '{at}.families.scaled.source_target': {scaled['source_target']} "
            f"is not one of targets {e['targets']}"
        )
    if scaled["source_seed"] is not None and scaled["source_seed"] not in c["seeds"]:
        raise ConfigError(
            f"config key '{at}.families.scaled.source_seed': {scaled['source_seed']} is not one of seeds {c['seeds']}"
        )


def member_spec(model: dict[str, Any], data: dict[str, Any], kind: str, value: float) -> ArchSpec:
    """A width or bottleneck family member: the experiment's model with that option (k' or Z) set to ``value``."""
    return base_spec({**model, kind: value}, data)


def base_name(e: dict[str, Any], target: float | str, data: dict[str, Any]) -> str:
    """Which large network an experiment's target prunes: the model's spec id, plus the method and a hash
    of its regulariser when its training differs. Plainly trained networks are so shared between
    experiments (and methods) that prune the same model."""
    from prunestudy.io.artifacts import config_hash

    m = method(e["method"])
    spec_id = base_spec(m.base_options(e["model"]), data).spec_id
    reg = m.regulariser(m.params(**e["prune"]), target)
    return spec_id if reg is None else f"{spec_id}-{m.name}-{config_hash(reg)[:8]}"


def large_networks(c: dict[str, Any]) -> tuple[dict[str, dict], dict[tuple[str, str], str]]:
    """The study's large networks, computed once for the workflow: each by name (:func:`base_name`) with the
    model options and regulariser it trains with, and which one each (experiment, target label) prunes."""
    bases, base_of = {}, {}
    for e in c["experiments"]:
        m = method(e["method"])
        for t in e["targets"]:
            name = base_name(e, t, c["data"])
            reg = m.regulariser(m.params(**e["prune"]), t)
            bases[name] = {"model": m.base_options(e["model"]), "regulariser": {"method": m.name, **reg} if reg else {}}
            base_of[e["name"], target_label(t)] = name
    return bases, base_of
