import re

from tests.conftest import ROOT


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd in (ROOT / ".ci/run").read_text().splitlines()


def test_every_config_key_is_documented():
    import yaml

    from prunestudy.config import SCHEMA

    schema = yaml.safe_load(SCHEMA.read_text())
    doc = (ROOT / "config/README.md").read_text()

    def keys(node, prefix=""):
        for k, sub in node.get("properties", {}).items():
            ref = sub.get("$ref", "")
            if ref == "#/$defs/recipe" and prefix:  # a recipe's keys are documented once, under `train`
                yield prefix + k
                continue
            target = schema["$defs"][ref.split("/")[-1]] if ref.startswith("#/$defs/") else sub
            if target.get("type") == "object" and "properties" in target:
                yield from keys(target, prefix + k + ".")
            elif target.get("type") == "array" and target["items"].get("type") == "object":
                yield from keys(target["items"], prefix + k + "[].")
            else:
                yield prefix + k

    missing = [k for k in keys(schema) if f"`{k}`" not in doc]
    assert not missing, missing


def test_every_methods_setting_is_documented():
    from dataclasses import fields

    from prunestudy.methods import METHODS

    doc = (ROOT / "config/README.md").read_text()
    missing = [
        f"{m.name}: {f.name}"
        for m in METHODS.values()
        for f in fields(m.params)
        if f"`experiments[].prune.{f.name}`" not in doc
    ]
    assert not missing, missing
