"""Config validation: JSON Schema with defaults, then the checks a schema cannot express.

The Snakefile calls :func:`validate` before it builds the DAG, so a bad config stops the run before
any job with one message that names the key and what is allowed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from prunestudy.catalog import DATASETS
from prunestudy.spec import wrn

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


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


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate(config: dict[str, Any], schema_path: str | Path = SCHEMA) -> dict[str, Any]:
    """Fill defaults into ``config`` in place, check it, and return it; raise :class:`ConfigError`."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(_Filling(schema).iter_errors(config), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        e = errors[0]
        allowed = e.schema.get("description", "") if isinstance(e.schema, dict) else ""
        raise ConfigError(f"config key '{_key(e.path)}': {e.message}" + (f" (expected: {allowed})" if allowed else ""))
    _check_semantics(config)
    return config


def _check_semantics(c: dict[str, Any]) -> None:
    depth = c["model"]["depth"]
    if (depth - 4) % 6:
        raise ConfigError(f"config key 'model.depth': {depth} is not of the form 6n+4 (10, 16, 22, 28, 34, 40, ...)")
    base = base_spec(c)
    if c["prune"]["max_prunes"] > base.prunable_channels:
        raise ConfigError(
            f"config key 'prune.max_prunes': {c['prune']['max_prunes']} exceeds the {base.prunable_channels} "
            f"prunable channels of WRN-{depth}-{c['model']['width']}"
        )
    for name in ("train",):
        r = c[name]
        late = [m for m in r["milestones"] if m >= r["epochs"]]
        if r["schedule"] == "multistep" and late:
            raise ConfigError(f"config key '{name}.milestones': {late} not below {name}.epochs={r['epochs']}")
    floor = c["prune"]["param_floor"]
    if floor and min(c["budgets"]) < floor:
        raise ConfigError(
            f"config key 'budgets': {min(c['budgets'])} is below prune.param_floor={floor}, "
            "so no trajectory step can reach it"
        )
    scaled = c["families"]["scaled"]
    if scaled["targets"] and scaled["source_budget"] not in c["budgets"]:
        raise ConfigError(
            f"config key 'families.scaled.source_budget': {scaled['source_budget']} "
            f"is not one of budgets {c['budgets']}"
        )
    if scaled["source_seed"] is not None and scaled["source_seed"] not in c["seeds"]:
        raise ConfigError(
            f"config key 'families.scaled.source_seed': {scaled['source_seed']} is not one of seeds {c['seeds']}"
        )
    for k in c["families"]["width"]:
        if int(16 * k) < 1:
            raise ConfigError(f"config key 'families.width': k'={k} gives a zero-width stage")


def base_spec(c: dict[str, Any], **overrides: Any):
    """The base WRN from the ``model`` and ``data`` slices; ``overrides`` set k or the bottleneck Z."""
    i = DATASETS[c["data"]["name"]]
    kw = {"k": c["model"]["width"], **overrides}
    return wrn(
        c["model"]["depth"],
        kw.pop("k"),
        num_classes=i.num_classes,
        in_channels=i.in_channels,
        image_size=i.image_size,
        **kw,
    )


def load(path: str | Path) -> dict[str, Any]:
    return validate(yaml.safe_load(Path(path).read_text()) or {})
