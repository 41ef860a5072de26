import re

from tests.conftest import ROOT


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd in (ROOT / ".ci/run").read_text().splitlines()


def test_every_config_key_is_documented():
    import yaml

    from prunestudy.io.config import SCHEMA

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


def test_the_mutation_score_script_counts_timeouts_as_killed_and_unchecked_apart():
    import importlib.util

    spec = importlib.util.spec_from_file_location("scores", ROOT / "workflow/scripts/mutation_scores.py")
    scores = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scores)
    out = "\n".join(
        [
            "    prunestudy.analysis.stats.x_holm__mutmut_1: killed",
            "    prunestudy.analysis.stats.x_holm__mutmut_2: survived",
            "    prunestudy.analysis.stats.x_holm__mutmut_3: timeout",
            "    prunestudy.analysis.stats.x_holm__mutmut_4: not checked",
            "    prunestudy.methods.l1norm.xǁL1Normǁprune__mutmut_7: no tests",
        ]
    )
    lines = scores.table(scores.tally(out)).splitlines()
    assert lines[2] == "| analysis.stats | 4 | 2 | 1 | 1 | 67% |"
    assert lines[3] == "| methods.l1norm | 1 | 0 | 1 | 0 | 0% |"
    assert lines[4] == "| all | 5 | 2 | 2 | 1 | 50% |"


def test_nothing_in_the_repository_cites_a_file_outside_it():
    """The project documents itself in docs/; a briefing beside the repository is not there for its users."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    outside = re.compile(r"\.\./shared/|\b(?:STUDY|DESIGN|SLURM-NOTES)\.md\b")
    citing = [
        f
        for f in files
        if (ROOT / f).is_file() and f != "tests/test_docs.py" and outside.search((ROOT / f).read_text(errors="replace"))
    ]
    assert not citing, citing
