import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from prunestudy.arch import wrn
from prunestudy.io.artifacts import UnsafeCheckpointError, load_checkpoint, save_checkpoint
from prunestudy.training.data import Augment, Batch
from prunestudy.training.loop import NonFiniteLossError, evaluate, fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime
from tests.conftest import ROOT, base_train_args, cli, tiny_spec

RECIPE = Recipe(epochs=3, batch_size=64, lr=0.05, milestones=(2,))


def test_same_seed_gives_bit_identical_results(digits):
    spec = tiny_spec(mids=(4, 6, 8))
    rt = Runtime.pick("cpu")
    a = fit(spec, digits, RECIPE, Augment(pad=1, pad_mode="constant"), seed=3, rt=rt)
    b = fit(spec, digits, RECIPE, Augment(pad=1, pad_mode="constant"), seed=3, rt=rt)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    assert (a.val_error, a.test_error) == (b.val_error, b.test_error)
    for (k, v), w in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    c = fit(spec, digits, RECIPE, Augment(), seed=4, rt=rt)
    assert c.history[0]["train_loss"] != a.history[0]["train_loss"]


def test_non_finite_loss_stops_with_a_clear_error(digits):
    with pytest.raises(NonFiniteLossError, match="lower the learning rate"):
        fit(tiny_spec(), digits, Recipe(epochs=2, batch_size=64, lr=1e30), Augment(), seed=0, rt=Runtime.pick("cpu"))


def test_accuracy_is_total_correct_over_total(digits):
    model = tiny_spec().build()
    rt = Runtime.pick("cpu")
    with torch.no_grad():
        model.eval()
        pred = model(digits.normalize(digits.test.x)).argmax(1)
    expected = 1 - (pred == digits.test.y).sum().item() / len(digits.test)
    assert evaluate(model, digits, digits.test, rt, batch_size=7) == pytest.approx(expected, abs=1e-12)


def test_crafted_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"state": Evil()}, path)
    with pytest.raises(UnsafeCheckpointError, match="refusing"):
        load_checkpoint(path)
    assert not marker.exists()
    save_checkpoint(tmp_path / "ok.pt", {"spec": "{}", "state": {"w": torch.ones(2)}, "step": 3})
    assert load_checkpoint(tmp_path / "ok.pt")["step"] == 3


def _train_args(cfg, out, epochs):
    return base_train_args({**cfg, "model": {"family": "wrn", "depth": 10, "width": 1}}, out, epochs, [epochs - 1])


def _comparable(metrics_path):
    m = json.loads(metrics_path.read_text())
    return (
        [(h["train_loss"], h["val_error"]) for h in m["extra"]["history"]],
        m["val_error"],
        m["test_error"],
        m["spec_id"],
        m["params"],
    )


def test_sigkill_mid_training_resumes_to_identical_metrics(cfg, tmp_path):
    """Really kill the training process after an epoch, restart it, and compare with an unbroken run."""
    epochs = 6
    cli(*_train_args(cfg, tmp_path / "ref", epochs))
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "prunestudy.cli", *_train_args(cfg, out, epochs)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "resume.pt").exists() and load_checkpoint(out / "resume.pt")["epoch"] >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists(), "the run finished before it could be killed"
    killed_at = load_checkpoint(out / "resume.pt")["epoch"]
    assert 2 <= killed_at < epochs
    res = cli(*_train_args(cfg, out, epochs))
    assert f"resuming from epoch {killed_at}" in res.stderr
    assert _comparable(out / "metrics.json") == _comparable(tmp_path / "ref" / "metrics.json")
    assert not (out / "resume.pt").exists()


def test_metrics_json_is_self_describing(cfg, tmp_path):
    cli(*_train_args(cfg, tmp_path, 1))
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in (
        "spec",
        "spec_id",
        "params",
        "flops",
        "macs",
        "seed",
        "derived_seeds",
        "recipe",
        "epochs",
        "final_train_loss",
        "val_error",
        "test_error",
        "wall_time_s",
        "throughput_img_s",
        "device",
        "runtime",
        "versions",
        "config_hash",
        "arm",
    ):
        assert key in m, key
    assert m["arm"] == "base" and m["versions"]["torch"] == torch.__version__
    rt = m["runtime"]
    assert (rt["device"], rt["threads"], rt["bf16"], rt["compile"]) == ("cpu", 1, False, False) and rt["name"]
    assert m["params"] == wrn(10, 1, in_channels=1, image_size=8).param_count()
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert json.loads(ckpt["spec"]) == m["spec"]


def test_resume_state_from_another_config_is_ignored(digits, tmp_path, caplog):
    spec, rt, path = tiny_spec(), Runtime.pick("cpu"), tmp_path / "resume.pt"
    recipe = Recipe(epochs=2, batch_size=64, lr=0.05)
    fit(spec, digits, recipe, Augment(), seed=1, rt=rt, resume_path=path, resume_key="a")
    assert load_checkpoint(path)["epoch"] == 2
    longer = Recipe(epochs=3, batch_size=64, lr=0.05)
    with caplog.at_level("INFO", logger="prunestudy"):
        fresh = fit(spec, digits, longer, Augment(), seed=1, rt=rt, resume_path=path, resume_key="b")
    assert "different config" in caplog.text and "resuming" not in caplog.text
    assert len(fresh.history) == 3
    fit(spec, digits, recipe, Augment(), seed=1, rt=rt, resume_path=path, resume_key="a")
    caplog.clear()
    with caplog.at_level("INFO", logger="prunestudy"):
        resumed = fit(spec, digits, longer, Augment(), seed=1, rt=rt, resume_path=path, resume_key="a")
    assert "resuming from epoch 2" in caplog.text and len(resumed.history) == 3


def test_train_step_runs_a_methods_hooks_after_backward_and_after_the_step(digits):
    from prunestudy.methods.base import TrainHooks
    from prunestudy.training.loop import make_optimizer, train_step

    rt = Runtime.pick("cpu")
    model = rt.prepare(wrn(10, 1, in_channels=1, image_size=8).build()).train()
    opt = make_optimizer(model, RECIPE)
    p = model.head.fc.weight
    seen = []

    def after_backward():
        seen.append(("backward", p.grad is not None, p.detach().clone()))
        p.grad.zero_()  # a hook may edit the gradient before the step uses it (as masking does)

    def after_step():
        seen.append(("step", True, p.detach().clone()))

    before = p.detach().clone()
    idx = torch.arange(16)
    hooks = TrainHooks(after_backward=[after_backward], after_step=[after_step])
    train_step(model, opt, digits, rt, Batch(idx), Augment(), hooks)
    assert [s[0] for s in seen] == ["backward", "step"] and seen[0][1]
    assert torch.equal(seen[0][2], before)  # after backward, before the update
    # the zeroed gradient reached the step: with weight decay only, the weights shrink by lr * wd
    torch.testing.assert_close(seen[1][2], before * (1 - RECIPE.lr * RECIPE.weight_decay))


def test_a_job_started_as_fewer_processes_than_its_config_asks_for_stops_before_training(cfg, tmp_path):
    res = cli(*base_train_args(cfg, tmp_path / "out", 1, []), "--processes", "2", check=False)
    assert res.returncode != 0 and "runs as 1 process(es) but gpu.per_job is 2" in res.stderr
    assert "torchrun --standalone --nproc-per-node 2" in res.stderr and not (tmp_path / "out").exists()
