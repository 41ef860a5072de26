"""Every rule that computes on a device is covered by the cluster profile: none falls back to the CPU
partition's defaults (a 30-minute limit), as `guide` once did."""

import importlib.util
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import ROOT


def _device_rules() -> set[str]:
    """The rules whose resources ask for a GPU slot (GPU_JOB, or FIT_JOB for those that train), and the rules
    derived from them by `use rule`."""
    texts = [p.read_text() for p in sorted((ROOT / "workflow/rules").glob("*.smk"))]
    text = "\n".join(texts)
    blocks = [b for t in texts for b in re.split(r"\n(?=rule |use rule |[A-Z_]+ = )", t)]
    asks = ("**GPU_JOB", "**FIT_JOB")
    rules = {m.group(1) for b in blocks if any(a in b for a in asks) and (m := re.match(r"rule (\w+):", b))}
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
        "lottery",
        "prune_chunk",
        "oneshot",
        "oneshot_masked",
        "oneshot_long",
        "oneshot_long_masked",
        "latency",
    }


def test_the_slurm_profile_gives_every_device_rule_a_gpu_partition_and_leaves_gpus_and_cores_to_the_rule():
    profile = yaml.safe_load((ROOT / "workflow/profiles/slurm/config.yaml").read_text())
    resources = profile["set-resources"]
    missing = sorted(_device_rules() - set(resources))
    assert not missing, f"rules without set-resources in the SLURM profile: {missing}"
    assert all(resources[r]["slurm_partition"] == "gpu" and resources[r]["runtime"] >= 30 for r in _device_rules())
    # the rule's GPUs, nodes, tasks and cores (gpu.per_job, gpu.nodes, threads) must reach sbatch, so the
    # profile sets none of them
    launch = {"gpu", "cpus_per_task", "nodes", "gres", "tasks_per_node", "mpi"}
    assert not [r for r in _device_rules() if launch & set(resources[r])]


class _Resources(dict):
    __getattr__ = dict.__getitem__


def _dry_run(tmp_path, *config: str, profile: str | None = "slurm") -> str:
    """What a dry run prints, each job's shell command included."""
    args = ["snakemake", "-n", "-p", "-s", str(ROOT / "Snakefile"), "--configfile", *config]
    args += ["--profile", str(ROOT / "workflow/profiles" / profile)] if profile else []
    return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=True).stdout


def _planned(tmp_path, *config: str, profile: str | None = None) -> dict[str, tuple[dict, str]]:
    """Each rule's first job in a dry run: its resources (as snakemake resolved them) and its shell command."""
    out = _dry_run(tmp_path, *config, profile=profile)
    planned = {}
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", out):
        if (m := re.search(r"rule (\w+):", block)) and m.group(1) not in planned:
            res = re.search(r"resources: (.*)", block)
            pairs = (kv.split("=", 1) for kv in res.group(1).split(", ")) if res else ()
            shell = re.search(r"Shell command: (.*)", block)
            planned[m.group(1)] = (
                {k: int(v) if v.isdigit() else v for k, v in pairs},
                shell.group(1) if shell else "",
            )
    return planned


def _sbatch(resources: dict) -> str:
    """The sbatch line the SLURM executor plugin writes for a job with these resources."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = SimpleNamespace(resources=_Resources(resources), threads=resources["cpus_per_task"])
    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "account": "", "partition": "-p gpu"}
    params |= {"workdir": None}
    return f"{get_submit_command(job, params)} {set_gres_string(job)}"


@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="pip install -e '.[slurm]' for the SLURM executor plugin",
)
def test_a_data_parallel_job_asks_slurm_for_its_gpus_on_one_node_and_starts_under_torchrun(tmp_path):
    (tmp_path / "ddp.yaml").write_text("device: cuda\nthreads: 4\ngpu: {per_job: 2}\n")
    planned = _planned(tmp_path, str(ROOT / "config/liu.yaml"), "ddp.yaml", profile="slurm")
    resources, shell = planned["train_base"]
    sbatch = _sbatch(resources)
    assert "--gpus=2" in sbatch and "--nodes=1" in sbatch and "--cpus-per-task=8" in sbatch, sbatch
    assert "--ntasks-per-gpu" not in sbatch  # one task: torchrun starts the two processes inside it
    assert shell.startswith("torchrun --standalone --nproc-per-node 2 --no-python prunestudy train --processes 2 ")
    for rule in ("scratch", "oneshot", "lottery"):
        assert planned[rule][0]["gpu"] == 2 and planned[rule][1].startswith("torchrun "), rule
    assert planned["latency"][0]["gpu"] == 1  # single-process, as prune_chunk (liu.yaml has no iterative method)
    one = _planned(tmp_path, str(ROOT / "config/liu.yaml"), profile="slurm")["train_base"]
    assert "--gpus=1" in _sbatch(one[0]) and "--nodes" not in _sbatch(one[0])
    assert one[1].startswith("prunestudy train --processes 1 ")


@pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="pip install -e '.[slurm]' for the SLURM executor plugin",
)
def test_a_job_over_two_nodes_asks_for_gpus_and_tasks_per_node_and_runs_the_same_job_under_srun(tmp_path):
    (tmp_path / "one.yaml").write_text("device: cuda\nthreads: 4\ngpu: {per_job: 4}\n")
    (tmp_path / "two.yaml").write_text("device: cuda\nthreads: 4\ngpu: {per_job: 4, nodes: 2}\n")
    two = _planned(tmp_path, str(ROOT / "config/liu.yaml"), "two.yaml", profile="slurm")
    for rule in ("train_base", "scratch", "oneshot", "lottery"):
        resources, shell = two[rule]
        sbatch = _sbatch(resources)
        # two GPUs and two tasks (one process each, `threads` cores) on each of two nodes
        for part in ("--nodes=2", "--gres=gpu:2", "--ntasks-per-node=2", "--cpus-per-task=4"):
            assert part in sbatch, (rule, sbatch)
        assert "--gpus=" not in sbatch and "--ntasks-per-gpu" not in sbatch, sbatch  # --gpus would not say per node
        # rank 0 runs on the allocation's first node, where the job step runs this command
        launch = "MASTER_ADDR=$(hostname) srun --kill-on-bad-exit=1 --ntasks-per-node 2 --cpus-per-task 4 "
        assert shell.startswith(launch + "prunestudy "), shell
    assert two["latency"][0]["gpu"] == 1 and "nodes" not in two["latency"][0]
    # the same jobs with the same arguments as on one node
    commands = {
        name: {
            re.sub(r"^.*?(?=prunestudy )", "", c)
            for c in re.findall(r"Shell command: (.*)", _dry_run(tmp_path, str(ROOT / "config/liu.yaml"), name))
        }
        for name in ("one.yaml", "two.yaml")
    }
    assert len(commands["two.yaml"]) > 700 and commands["one.yaml"] == commands["two.yaml"]


# every rule's shell text as Snakemake stores it for its "code" rerun trigger (before formatting)
_SHELL_TEXT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(
        snakefile=Path(sys.argv[1]), config_settings=ConfigSettings(configfiles=[Path(c) for c in sys.argv[2:]]),
        resource_settings=ResourceSettings(), storage_settings=StorageSettings(), workdir=Path.cwd(),
    )
    wf.dag(DAGSettings())
    print(json.dumps({r.name: r.shellcmd for r in wf._workflow.rules if r.shellcmd}))
"""


def _shell_text(tmp_path, *config: str) -> dict[str, str]:
    args = [sys.executable, "-c", _SHELL_TEXT, str(ROOT / "Snakefile"), *config]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_changing_the_nodes_of_a_job_changes_no_rule_s_shell_text_so_nothing_reruns(tmp_path):
    """Snakemake reruns a job when its rule's shell text changed (the "code" trigger): the launcher, the one
    thing gpu.nodes changes, is a resource so that the text stays the same."""
    texts = {}
    for name, gpu in (("one", "{per_job: 4}"), ("two", "{per_job: 4, nodes: 2}"), ("single", "{per_job: 1}")):
        (tmp_path / f"{name}.yaml").write_text(f"device: cuda\ngpu: {gpu}\n")
        texts[name] = _shell_text(tmp_path, str(ROOT / "config/liu.yaml"), f"{name}.yaml")
    assert texts["one"]["train_base"].startswith("{resources.launch} prunestudy train ")
    assert texts["one"] == texts["two"]
    assert texts["single"]["train_base"].startswith("prunestudy train ")  # one process, no launcher


def test_the_workstation_profile_bounds_gpu_jobs_for_every_rule_alike():
    profile = yaml.safe_load((ROOT / "workflow/profiles/workstation/config.yaml").read_text())
    assert profile["resources"] == ["gpu=1"] and profile["cores"] == "all"


def _input_params(text: str) -> list[str]:
    """Every param expression of the rules that reads ``input`` (from ``lambda wc, input:`` to its end)."""
    out = []
    for m in re.finditer(r"lambda wc, input: ", text):
        depth, i = 0, m.end()
        while i < len(text) and not (depth == 0 and text[i] in ",\n" and i > m.end()):
            depth += text[i] in "([{"
            depth -= text[i] in ")]}"
            i += 1
        out.append(text[m.end() : i])
    return out


def test_no_config_value_hides_in_a_param_that_reads_input():
    """Snakemake records no param that reads ``input``: a config value there would never trigger a rerun
    (how Scratch-E/B once ignored a changed ``scratch_e`` or ``scratch_b``)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow/rules").glob("*.smk")))
    found = _input_params(text)
    assert found and all("input" in f for f in found)
    assert not [f for f in found if re.search(r"config\[|EXPERIMENTS|BASES|SEEDS|wc\.", f)]


_GENERIC = ["--executor", "cluster-generic", "--cluster-generic-submit-cmd", "false", "--jobs", "1"]


@pytest.mark.parametrize(
    "executor",
    [
        [],
        pytest.param(
            _GENERIC,
            marks=pytest.mark.skipif(
                importlib.util.find_spec("snakemake_executor_plugin_cluster_generic") is None,
                reason="pip install -e '.[slurm]' for the cluster-generic executor (Grid Engine, PBS, LSF)",
            ),
        ),
    ],
    ids=["workstation", "cluster-generic"],
)
def test_a_job_over_several_nodes_is_refused_before_any_job_outside_slurm(tmp_path, executor):
    from tests.workflow_helpers import snakemake, write_config

    config = write_config(tmp_path / "two.yaml", device="cuda", **{"gpu.per_job": 4, "gpu.nodes": 2})
    res = snakemake(tmp_path, config, *executor, check=False)
    assert res.returncode != 0
    assert "config key 'gpu.nodes' is 2" in res.stderr and "--profile workflow/profiles/slurm" in res.stderr
    assert not (tmp_path / "results").exists()  # refused before the first job
    assert snakemake(tmp_path, config, "-n").returncode == 0  # a dry run still plans it
