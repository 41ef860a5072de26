"""The cost estimate counts the jobs the workflow plans: every stage's job count against a dry run's."""

import pytest
import yaml

from benchmarks.paper_cost import stages
from prunestudy.io.config import validate
from tests.conftest import ROOT
from tests.workflow_helpers import planned_jobs


@pytest.mark.parametrize("name", ["liu.yaml", "liu-imagenet.yaml"])
def test_each_stage_costs_the_jobs_the_workflow_plans(tmp_path, name):
    cfg = validate(yaml.safe_load((ROOT / "config" / name).read_text()))
    cost = stages(cfg)
    rules = {}
    for rule, _ in planned_jobs(tmp_path, ROOT / "config" / name):
        rules[rule] = rules.get(rule, 0) + 1
    assert cost["base"].jobs == rules["train_base"]
    assert cost["fine-tune"].jobs == rules["oneshot"] + rules.get("oneshot_masked", 0)
    assert cost["Scratch-E"].jobs + cost["Scratch-B"].jobs == rules["scratch"]
    assert cost.get("lottery tickets", None) is None or cost["lottery tickets"].jobs == rules["lottery"]
    long_jobs = rules.get("train_long_base", 0) + rules.get("oneshot_long", 0) + rules.get("oneshot_long_masked", 0)
    assert cost.get("long base") is None or cost["long base"].jobs == long_jobs
    assert all(s.images > 0 and s.flops > 0 for s in cost.values())


def test_a_longer_recipe_costs_proportionally_more():
    cfg = validate(yaml.safe_load((ROOT / "config/liu-imagenet.yaml").read_text()))
    base = stages(cfg)["base"]
    cfg["train"]["epochs"] *= 2
    assert stages(cfg)["base"].flops == pytest.approx(2 * base.flops)
