import copy
import re
import subprocess
import sys
import sysconfig
from dataclasses import asdict, fields

import pytest
import yaml

from prunestudy.io.config import SCHEMA, ConfigError, validate
from prunestudy.methods.fisher import FisherParams
from tests.conftest import ROOT


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def test_default_and_paper_configs_validate():
    for name in ("config.yaml", "paper.yaml", "liu.yaml", "liu-cifar100.yaml", "liu-imagenet.yaml"):
        c = validate(_load(name))
        assert c["seeds"] and all(e["name"] and e["targets"] for e in c["experiments"])
    methods = {e["method"] for e in validate(_load("liu.yaml"))["experiments"]}
    assert methods == {"slimming", "l1", "magnitude", "sss"}
    c100 = validate(_load("liu-cifar100.yaml"))
    assert c100["data"]["name"] == "cifar100" and {e["method"] for e in c100["experiments"]} == {
        "slimming",
        "magnitude",
    }


def test_defaults_are_filled_and_method_settings_come_from_the_methods_dataclass():
    c = validate({"experiments": [{"name": "e", "model": {"family": "wrn", "depth": 40, "width": 2}}]})
    assert c["train"]["momentum"] == 0.9 and c["data"]["augment"]["pad"] == 0
    assert c["scratch_b"]["max_factor"] == 2
    (e,) = c["experiments"]
    assert e["method"] == "fisher" and e["prune"] == asdict(FisherParams())
    # the schema holds no second copy of those defaults to drift from the dataclass
    prune = yaml.safe_load(SCHEMA.read_text())["properties"]["experiments"]["items"]["properties"]["prune"]
    assert prune["default"] == {} and "properties" not in prune
    assert {f.name for f in fields(FisherParams)} == set(e["prune"])


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"bogus": 1}, "<top level>"),
        ({"train": {"epochs": -1, "batch_size": 8, "lr": 0.1}}, "train.epochs"),
        ({"train": {"epochs": "ten", "batch_size": 8, "lr": 0.1}}, "train.epochs"),
        ({"experiments.targets": [0.5, 1.2]}, "experiments[0].targets[1]"),
        ({"experiments.targets": [0.0]}, "experiments[0].targets[0]"),
        ({"experiments.targets": [0.25, 0.2500001]}, "experiments[0].targets"),
        ({"seeds": []}, "seeds"),
        ({"data": {"name": "mnist"}}, "data.name"),
        ({"experiments.model": {"family": "wrn", "depth": 12, "width": 2}}, "experiments[0].model"),
        ({"experiments.model": {"family": "alexnet"}}, "experiments[0].model.family"),
        ({"experiments.prune": {"max_prunes": 5000}}, "experiments[0].prune.max_prunes"),
        ({"experiments.prune": {"nesterov": True}}, "experiments[0].prune.nesterov"),
        ({"experiments.prune": {"every": "ten"}}, "experiments[0].prune.every"),
        ({"experiments.targets": ["A"]}, "experiments[0].targets"),
        ({"experiments.long_base": True}, "experiments[0].long_base"),
        ({"experiments.method": "magic"}, "experiments[0].method"),
        ({"data": {"download": "yes"}}, "data.download"),
        ({"data": {"val_size": 1.5}}, "data.val_size"),  # neither a fraction nor a count
        ({"data": {"val_size": 0.999}}, "data.val_size"),  # would train on one image
        ({"data": {"val_size": 5}}, "data.val_size"),  # fewer images than classes
        ({"data": {"test_size": 1790}}, "data.test_size"),
        ({"train": {"epochs": 10, "batch_size": 8, "lr": 0.1, "milestones": [4, 4]}}, "train.milestones"),
        ({"experiments.families": {"width": [1, 1.0]}}, "experiments[0].families.width"),
    ],
)
def test_bad_values_name_the_key(change, key):
    bad = copy.deepcopy(_load("config.yaml"))
    for k, v in change.items():
        if k.startswith("experiments."):
            bad["experiments"][0][k.split(".", 1)[1]] = v
        else:
            bad[k] = v
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        validate(bad)


def test_guided_architectures_are_refused_for_magnitude_pruning_which_keeps_every_width():
    c = copy.deepcopy(_load("config.yaml"))
    (i,) = [i for i, e in enumerate(c["experiments"]) if e["method"] == "magnitude"]
    c["experiments"][i]["guided"] = True
    with pytest.raises(ConfigError, match=re.escape(f"'experiments[{i}].guided'") + ".*keeps every width"):
        validate(c)
    assert validate(_load("config.yaml"))["experiments"][0]["guided"] is False  # off unless asked for


def test_lottery_tickets_are_refused_for_an_iterative_method():
    c = copy.deepcopy(_load("config.yaml"))
    c["experiments"][0]["lottery"] = {"lrs": [0.1]}  # wrn-fisher
    with pytest.raises(ConfigError, match=re.escape("'experiments[0].lottery.lrs'") + ".*fisher is iterative"):
        validate(c)
    c = copy.deepcopy(_load("config.yaml"))
    (i,) = [i for i, e in enumerate(c["experiments"]) if e["method"] == "magnitude"]
    for lrs, message in (([0.1, 0.1000001], "repeat once written"), ([0.0123456789], "six significant digits")):
        c["experiments"][i]["lottery"] = {"lrs": lrs}
        with pytest.raises(ConfigError, match=re.escape(f"'experiments[{i}].lottery.lrs'") + f".*{message}"):
            validate(copy.deepcopy(c))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device": "cpu"}, "need a GPU each; device is cpu"),
        ({"gpu": {"per_job": 4, "jobs_per_gpu": 2}}, "set gpu.jobs_per_gpu to 1"),
        ({"train": {"batch_size": 66}}, r"'train.batch_size': 66 images do not split evenly over gpu.per_job=4"),
        ({"gpu": {"per_job": 4, "nodes": 3}}, r"'gpu.nodes': 3 nodes cannot each hold an equal share of at least 2"),
        ({"gpu": {"per_job": 4, "nodes": 4}}, r"'gpu.nodes': 4 nodes.*a multiple of gpu.nodes of at least 8"),
        ({"gpu": {"per_job": 4, "nodes": 0}}, r"'gpu.nodes'"),
    ],
)
def test_a_data_parallel_job_is_refused_where_it_cannot_split(change, message):
    c = {**_load("config.yaml"), "device": "cuda", "gpu": {"per_job": 4}}
    validate(copy.deepcopy(c))  # the default's batch of 64 splits over 4 GPUs
    c = copy.deepcopy({**c, **change})
    if "train" in change:
        c["train"] = {**_load("config.yaml")["train"], **change["train"]}
    with pytest.raises(ConfigError, match=message):
        validate(c)


def test_a_job_spread_over_nodes_holds_two_gpus_or_more_on_each():
    c = {**_load("config.yaml"), "device": "cuda"}
    validate(copy.deepcopy({**c, "gpu": {"per_job": 4, "nodes": 2}}))
    validate(copy.deepcopy({**c, "gpu": {"per_job": 16, "nodes": 2}}))
    with pytest.raises(ConfigError, match=r"'gpu.nodes': 2 nodes"):
        validate(copy.deepcopy({**c, "gpu": {"per_job": 1, "nodes": 2}}))


def test_splits_take_counts_or_fractions_that_leave_every_class_in_every_split():
    for val in (0.1, 200, 200.0):
        validate({**_load("config.yaml"), "data": {"val_size": val}})
    with pytest.raises(ConfigError, match=r"'data.val_size'.*10 classes.*between 11 and"):
        validate({**_load("config.yaml"), "data": {"val_size": 0.999}})


def test_milestones_are_sorted_before_anything_hashes_them():
    c = validate({**_load("config.yaml"), "train": {"epochs": 12, "batch_size": 64, "lr": 0.1, "milestones": [10, 6]}})
    assert c["train"]["milestones"] == [6, 10]


def test_nested_command_line_overrides_get_their_yaml_types():
    from prunestudy.io.config import apply_overrides

    c = _load("config.yaml")
    apply_overrides(c, {"train": {"lr": "0.2", "milestones": ["3", "5"]}, "seeds": ["1", "2"], "threads": 2})
    assert c["train"]["lr"] == 0.2 and c["train"]["milestones"] == [3, 5] and c["train"]["epochs"] == 12
    assert c["seeds"] == [1, 2] and c["threads"] == 2
    validate(c)


def test_missing_cifar_names_the_folder_and_the_fix(tmp_path):
    from prunestudy.io.catalog import FILES, missing_files

    data = {"name": "cifar10", "root": str(tmp_path), "download": False}
    assert "cifar-10-batches-py/" in missing_files(data) and "data.download: true" in missing_files(data)
    assert missing_files({**data, "download": True}) is None
    for f in FILES["cifar10"]:
        (tmp_path / f).parent.mkdir(exist_ok=True)
        (tmp_path / f).write_bytes(b"x")
    assert missing_files(data) is None


def test_a_real_run_without_cifar_stops_before_any_job(tmp_path):
    from tests.workflow_helpers import snakemake

    res = snakemake(tmp_path, ROOT / "config/paper.yaml", check=False, cwd=tmp_path)
    assert res.returncode != 0 and "cifar-10-batches-py" in res.stderr + res.stdout
    assert not (tmp_path / "results").exists()


def test_duplicate_experiment_names_are_refused():
    c = _load("config.yaml")
    c["experiments"].append(copy.deepcopy(c["experiments"][0]))
    with pytest.raises(ConfigError, match="names must be unique"):
        validate(c)


@pytest.mark.parametrize("old", ["model", "prune", "budgets", "families"])
def test_the_one_experiment_keys_say_what_replaced_them(old):
    c = _load("config.yaml")
    c[old] = {}
    with pytest.raises(ConfigError, match=f"config key '{old}' is no longer top-level.*experiments"):
        validate(c)


def test_snakemake_stops_before_any_job_on_bad_config(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(ROOT), "--config", "budgets=[1.5]"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode != 0
    assert "'budgets' went to experiments[].targets" in res.stderr + res.stdout
    assert "rule train_base" not in res.stdout


def test_a_regular_install_finds_its_schema(tmp_path):
    """Not editable: the schema ships inside the package, not beside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    deps = sysconfig.get_paths()["purelib"]  # this environment's packages (whatever its folder is called)
    (site / "deps.pth").write_text(deps + "\n")  # the dependencies only: .pth files there are not read
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    code = (
        "import prunestudy, yaml, sys; from prunestudy.io.config import validate; "
        "assert 'site-packages' in prunestudy.__file__, prunestudy.__file__; "
        "c = validate(yaml.safe_load(open(sys.argv[1]))); print(c['experiments'][0]['prune']['every'])"
    )
    res = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, str(ROOT / "config/config.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "10"


def test_one_shot_settings_are_checked_against_the_model():
    c = _load("config.yaml")
    l1 = next(e for e in c["experiments"] if e["method"] == "l1")
    l1["prune"]["settings"]["A"] = {"widths": [1, 2]}
    with pytest.raises(ConfigError, match=r"'experiments\[2\]\.prune\.settings\.A': 2 widths for the 6 groups"):
        validate(c)
    c = _load("config.yaml")
    c["experiments"][1]["targets"] = ["A"]
    with pytest.raises(ConfigError, match="are not fractions"):
        validate(c)


def test_experiments_that_train_the_same_model_plainly_share_their_large_network():
    from prunestudy.io.config import base_name

    c = validate(_load("config.yaml"))
    by = {e["name"]: e for e in c["experiments"]}
    data = c["data"]
    assert base_name(by["resnet-l1"], "A", data) == base_name(by["resnet-magnitude"], 0.5, data)
    assert base_name(by["resnet-sss"], 0.055, data) != base_name(by["resnet-l1"], "A", data)  # gates + APG
    assert "-slimming-" in base_name(by["vgg-slimming"], 0.4, data)
    assert base_name(by["vgg-slimming"], 0.4, data) == base_name(by["vgg-slimming"], 0.6, data)


def _experiment(i: int, **changes) -> dict:
    """The default config with experiment ``i``'s keys changed (dotted: 'prune.lr', 'model.width')."""
    c = copy.deepcopy(_load("config.yaml"))
    for dotted, value in changes.items():
        node = c["experiments"][i]
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return c


@pytest.mark.parametrize(
    ("i", "change", "key", "why"),
    [
        (0, {"prune.every": 0}, "experiments[0].prune.every", "must be >= 1"),
        (0, {"prune.batch_size": 0}, "experiments[0].prune.batch_size", "must be >= 2"),
        (0, {"prune.max_prunes": 0}, "experiments[0].prune.max_prunes", "must be >= 1"),
        (0, {"prune.lr": -0.1}, "experiments[0].prune.lr", "must be > 0"),
        (0, {"prune.chunk": 0}, "experiments[0].prune.chunk", "must be >= 1"),
        (0, {"prune.flops_weight": -1}, "experiments[0].prune.flops_weight", "must be >= 0"),
        (0, {"prune.param_floor": 1.0}, "experiments[0].prune.param_floor", "must be < 1"),
        (2, {"model.width": 0}, "experiments[2].model.width", "must be >= 0.0625"),
        (0, {"model.width": 0}, "experiments[0].model.width", "must be >= 0.0625"),
        (1, {"model.cfg": [16, 16.5, "M", 32]}, "experiments[1].model", "whole numbers of channels"),
        (1, {"model.width": True}, "experiments[1].model.width", "not a number"),
        (1, {"prune.sparsity": -0.01}, "experiments[1].prune.sparsity", "must be >= 0"),
        (0, {"prune.max_prunes": 10}, "experiments[0].targets", "out of reach"),
    ],
)
def test_every_degenerate_setting_is_refused_before_any_job_naming_its_key(i, change, key, why):
    with pytest.raises(ConfigError, match=re.escape(f"config key '{key}'") + ".*" + re.escape(why)):
        validate(_experiment(i, **change))


def test_a_densenet_without_growth_is_refused():
    c = copy.deepcopy(_load("config.yaml"))
    c["experiments"].append({"name": "dn", "model": {"family": "densenet", "depth": 10, "growth": 0}})
    with pytest.raises(ConfigError, match=r"'experiments\[5\]\.model\.growth': 0 is out of range"):
        validate(c)


def test_the_unreachable_target_bound_holds_on_a_real_trajectory():
    """The bound on what k prunes remove is an upper bound: Fisher's own WRN steps never remove more."""
    from prunestudy.arch import wrn
    from prunestudy.pruning.budgets import most_removable

    spec = wrn(10, 2, in_channels=1, image_size=8)
    for k in (1, 10, 60):
        assert most_removable(spec, k) >= max(  # the k most expensive single channels, removed greedily
            spec.param_count() - _greedy(spec, k), 0
        )
    assert most_removable(spec, 10**6) >= spec.param_count() - spec.with_widths([0, 0, 0]).param_count()


def _greedy(spec, k):
    for _ in range(k):
        w = list(spec.widths_vector)
        options = [spec.with_widths([x - (j == i) for j, x in enumerate(w)]) for i in range(len(w)) if w[i]]
        spec = min(options, key=lambda s: s.param_count())
    return spec.param_count()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("references: [", "cannot be read as YAML"),
        (
            "references:\n  - {paper: P, dataset: cifar10, model: M, arm: pruned, verified: true, source: s}\n",
            "error_pct",
        ),
        (
            "references:\n  - {paper: P, dataset: d, model: M, arm: a, error_pct: five, verified: true, source: s}\n",
            "entry 'references[0].error_pct': 'five' is not of type 'number'",
        ),
    ],
)
def test_the_references_file_is_checked_naming_the_file_and_entry(tmp_path, text, message):
    from prunestudy.io.config import load_references

    path = tmp_path / "refs.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        load_references(path)
    assert len(load_references(ROOT / "config/references.yaml")) > 10


def test_a_configfile_stands_alone_with_the_schemas_defaults(tmp_path):
    """A minimal CIFAR config inherits nothing from the embedded digits study: device auto, 30 epochs."""
    from tests.workflow_helpers import snakemake

    minimal = {
        "study": "minimal",
        "data": {"name": "cifar10"},
        "experiments": [{"name": "e", "model": {"family": "resnet", "depth": 8}, "method": "l1"}],
    }
    minimal["experiments"][0] |= {"prune": {"settings": {"A": {"ratios": [0.5, 0.5, 0.5]}}}, "targets": ["A"]}
    (tmp_path / "minimal.yaml").write_text(yaml.safe_dump(minimal))
    res = snakemake(tmp_path, tmp_path / "minimal.yaml", "-n", "--printshellcmds", cwd=tmp_path)
    base_job = next(line for line in res.stdout.splitlines() if "prunestudy train --processes 1 --arm base" in line)
    assert "--device auto" in base_job and '"epochs":30' in base_job and '"milestones":[15,22,27]' in base_job
    assert "seed2" in res.stdout and "seed3" not in res.stdout  # the schema's seeds [1, 2], not digits' [1, 2, 3]


def test_an_imagefolder_other_than_ilsvrc2012_is_split_checked_by_its_loader_not_the_catalog(tmp_path):
    """The catalog's counts are ILSVRC2012's: they refuse a val_size of 3 images (a class would get none),
    while a folder of three classes takes it, its split left to the loader's check."""
    c = {**_load("liu-imagenet.yaml"), "device": "cpu", "gpu": {"per_job": 1}}
    c["data"] = {**c["data"], "root": str(tmp_path), "val_size": 3}
    with pytest.raises(ConfigError, match=r"'data.val_size': 3 takes 3 of the 1281167 images of imagenet"):
        validate(copy.deepcopy(c))  # no folder yet: a dry run plans with the catalog's counts
    for k in range(3):
        (tmp_path / "train" / f"n{k:08d}").mkdir(parents=True)
    validate(copy.deepcopy(c))
    for k in range(3, 1000):  # ILSVRC2012's thousand classes: the catalog's counts hold again
        (tmp_path / "train" / f"n{k:08d}").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"'data.val_size': 3 takes"):
        validate(copy.deepcopy(c))
