"""Every rule that computes on a device is covered by the cluster profile: none falls back to the CPU
partition's defaults (a 30-minute limit), as `guide` once did."""

import re

import yaml

from tests.conftest import ROOT


def _device_rules() -> set[str]:
    """The rules whose resources ask for a GPU slot (GPU_JOB), and the rules derived from them by `use rule`."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow/rules").glob("*.smk")))
    blocks = re.split(r"\n(?=rule |use rule )", text)
    rules = {m.group(1) for b in blocks if "**GPU_JOB" in b and (m := re.match(r"rule (\w+):", b))}
    derived = re.findall(r"use rule (\w+) as (\w+) with", text)
    while new := {child for parent, child in derived if parent in rules} - rules:  # children of children too
        rules |= new
    return rules


def test_the_device_rules_are_the_ones_that_train_prune_or_time_networks():
    assert _device_rules() == {
        "train_base",
        "train_long_base",
        "scratch",
        "family",
        "scaled",
        "guide",
        "prune_chunk",
        "oneshot",
        "oneshot_masked",
        "oneshot_long",
        "oneshot_long_masked",
        "latency",
    }


def test_the_slurm_profile_gives_every_device_rule_a_gpu_partition_and_threads():
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    resources, threads = profile["set-resources"], profile["set-threads"]
    missing = sorted(_device_rules() - set(resources))
    assert not missing, f"rules without set-resources in the SLURM profile: {missing}"
    assert not sorted(_device_rules() - set(threads))
    assert all(resources[r]["gpu"] >= 1 and resources[r]["slurm_partition"] == "gpu" for r in _device_rules())


def test_the_workstation_profile_bounds_gpu_jobs_for_every_rule_alike():
    profile = yaml.safe_load((ROOT / "workflow/profiles/workstation/config.yaml").read_text())
    assert profile["resources"] == ["gpu=1"] and profile["cores"] == "all"
