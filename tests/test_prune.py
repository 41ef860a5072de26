import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from prunestudy.arch import spec_from_json
from prunestudy.io.artifacts import load_checkpoint, save_checkpoint
from prunestudy.methods.fisher import Fisher, FisherParams
from prunestudy.pruning.surgery import materialise
from prunestudy.pruning.trajectory import PruneState, run_chunk
from prunestudy.training.data import Augment
from prunestudy.training.loop import evaluate
from prunestudy.training.runtime import Runtime
from tests.conftest import ROOT, base_train_args, cli, slices, tiny_spec

CFG = FisherParams(every=3, max_prunes=12, chunk=5, lr=0.01, batch_size=32)


def _base_state(spec):
    torch.manual_seed(0)
    return PruneState(spec, spec.build().state_dict(), {})


def test_trajectory_checkpoints_reproduce_recorded_errors(digits, tmp_path):
    spec = tiny_spec(mids=(3, 2, 4))
    rt = Runtime.pick("cpu")
    state = run_chunk(
        _base_state(spec),
        digits,
        CFG,
        Augment(),
        rt,
        method=Fisher,
        seed=1,
        base=spec,
        end_step=9,
        steps_dir=tmp_path / "steps",
        resume_path=tmp_path / "resume.pt",
    )
    assert state.stopped == "no prunable channel left" and state.step == 9
    assert [r["step"] for r in state.rows] == list(range(1, 10))
    assert all(a["params"] > b["params"] for a, b in zip(state.rows, state.rows[1:], strict=False))
    for row in state.rows:
        ckpt = load_checkpoint(tmp_path / "steps" / row["checkpoint"])
        s = spec_from_json(ckpt["spec"])
        assert s.spec_id == row["spec_id"] and s.param_count() == row["params"] and s.flops() == row["flops"]
        net = materialise(s, ckpt["state"])
        assert evaluate(net, digits, digits.test, rt) == row["test_error"]
        assert evaluate(net, digits, digits.val, rt) == row["val_error"]
    assert state.spec.widths_vector == (0, 0, 0)
    assert materialise(state.spec, state.weights)(digits.normalize(digits.test.x[:2])).shape == (2, 10)


def test_chunked_run_equals_one_long_run(digits, tmp_path):
    spec = tiny_spec(mids=(3, 2, 4))
    rt = Runtime.pick("cpu")
    whole = run_chunk(
        _base_state(spec),
        digits,
        CFG,
        Augment(),
        rt,
        method=Fisher,
        seed=2,
        base=spec,
        end_step=6,
        steps_dir=tmp_path / "a",
        resume_path=tmp_path / "a.pt",
    )
    first = run_chunk(
        _base_state(spec),
        digits,
        CFG,
        Augment(),
        rt,
        method=Fisher,
        seed=2,
        base=spec,
        end_step=3,
        steps_dir=tmp_path / "b",
        resume_path=tmp_path / "b1.pt",
    )
    save_checkpoint(
        tmp_path / "mid.pt",
        {
            "spec": first.spec.to_json(),
            "weights": first.weights,
            "momentum": first.momentum,
            "step": first.step,
            "stopped": "",
            "elapsed_s": 0.0,
            "rows": [],
        },
    )
    second = run_chunk(
        PruneState.load(tmp_path / "mid.pt"),
        digits,
        CFG,
        Augment(),
        rt,
        method=Fisher,
        seed=2,
        base=spec,
        end_step=6,
        steps_dir=tmp_path / "b",
        resume_path=tmp_path / "b2.pt",
    )
    keys = ("group", "channel", "params", "val_error", "test_error", "train_loss", "spec_id")
    assert [[r[k] for k in keys] for r in whole.rows] == [[r[k] for k in keys] for r in first.rows + second.rows]


def test_resume_takes_weights_from_the_step_checkpoint_and_ignores_a_mismatched_one(digits, tmp_path, caplog):
    spec = tiny_spec(mids=(3, 2, 4))
    rt = Runtime.pick("cpu")

    def run(end_step, folder):
        return run_chunk(
            _base_state(spec),
            digits,
            CFG,
            Augment(),
            rt,
            method=Fisher,
            seed=3,
            base=spec,
            end_step=end_step,
            steps_dir=tmp_path / folder,
            resume_path=tmp_path / f"{folder}.pt",
            resume_key="k",
        )

    whole = run(5, "whole")
    run(3, "split")  # leaves its resume state at step 3, as a killed job would
    assert "weights" not in load_checkpoint(tmp_path / "split.pt")
    resumed = run(5, "split")
    assert [r["spec_id"] for r in resumed.rows] == [r["spec_id"] for r in whole.rows]
    assert [r["test_error"] for r in resumed.rows] == [r["test_error"] for r in whole.rows]

    save_checkpoint(tmp_path / "split/step00005.pt", load_checkpoint(tmp_path / "split/step00004.pt"))
    again = run(5, "split")  # the resume state names step 5, whose checkpoint is now step 4's
    assert "no longer matches" in caplog.text
    assert [r["spec_id"] for r in again.rows] == [r["spec_id"] for r in whole.rows]


def _chunk_args(cfg, work, base_model, chunk):
    return [
        "prune-chunk",
        "--method",
        "fisher",
        "--seed",
        "1",
        "--chunk",
        str(chunk),
        "--device",
        "cpu",
        "--input",
        str(base_model),
        "--out-state",
        str(work / f"chunk{chunk:03d}.state.pt"),
        "--out-rows",
        str(work / f"chunk{chunk:03d}.csv"),
        "--out-record",
        str(work / f"chunk{chunk:03d}.json"),
        "--base-identity",
        json.dumps({"experiment": "test", "arm": "base", "seed": 1, "slot": None}),
        *slices(cfg, "data", "model", "prune"),
    ]


@pytest.fixture
def tiny_cfg(cfg, tmp_path):
    cfg = {
        **cfg,
        "model": {"family": "wrn", "depth": 10, "width": 1},
        "prune": {**cfg["prune"], "every": 4, "max_prunes": 30, "chunk": 30, "batch_size": 32},
    }
    out = tmp_path / "base"
    cli(*base_train_args(cfg, out, 1, []))
    return cfg, out / "model.pt"


def test_sigkill_mid_chunk_resumes_to_the_same_trajectory(tiny_cfg, tmp_path):
    cfg, base_model = tiny_cfg
    ref, work = tmp_path / "ref", tmp_path / "killed"
    cli(*_chunk_args(cfg, ref, base_model, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "prunestudy.cli", *_chunk_args(cfg, work, base_model, 0)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    resume = work / ".resume" / "chunk000.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if resume.exists() and load_checkpoint(resume)["step"] >= 5:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work / "chunk000.csv").exists(), "the chunk finished before it could be killed"
    killed_at = load_checkpoint(resume)["step"]
    res = cli(*_chunk_args(cfg, work, base_model, 0))
    assert f"resuming chunk at step {killed_at}" in res.stderr
    a, b = pd.read_csv(ref / "chunk000.csv"), pd.read_csv(work / "chunk000.csv")
    pd.testing.assert_frame_equal(a.drop(columns="elapsed_s"), b.drop(columns="elapsed_s"))
    assert not resume.exists()
    last = load_checkpoint(work / "steps" / b["checkpoint"].iloc[-1])
    assert torch.equal(
        last["state"]["head.fc.weight"],
        load_checkpoint(ref / "steps" / a["checkpoint"].iloc[-1])["state"]["head.fc.weight"],
    )


def test_chunk_refuses_an_input_that_is_not_the_previous_chunk(tiny_cfg, tmp_path):
    cfg, base_model = tiny_cfg
    res = cli(*_chunk_args(cfg, tmp_path, base_model, 1), check=False)
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1
    assert f"{base_model}: expected the trajectory state" in res.stderr and "'chunk': 0" in res.stderr


def test_parameter_floor_stops_the_trajectory(digits, tmp_path):
    spec = tiny_spec(mids=(3, 2, 4))
    floor = 0.75  # one channel of this net is 6-11% of its params, so this takes several steps
    cfg = FisherParams(every=2, max_prunes=9, chunk=9, lr=0.01, batch_size=32, param_floor=floor)
    state = run_chunk(
        _base_state(spec),
        digits,
        cfg,
        Augment(),
        Runtime.pick("cpu"),
        method=Fisher,
        seed=1,
        base=spec,
        end_step=9,
        steps_dir=tmp_path / "steps",
        resume_path=tmp_path / "resume.pt",
    )
    assert state.stopped.startswith("parameter floor")
    assert state.rows[-1]["params"] <= floor * spec.param_count() < state.rows[-2]["params"]


def test_a_prune_step_keeps_weights_and_momentum_channels_last(digits):
    """After surgery the network and the sliced momentum keep the parameters' layout, so the optimizer's
    batched update never falls back to one kernel per tensor."""
    from prunestudy.pruning.trajectory import prune_step

    spec = tiny_spec(mids=(3, 2, 4))
    rt = Runtime.pick("cpu")
    torch.manual_seed(0)
    state = PruneState(spec, spec.build().state_dict(), {})
    model = rt.prepare(materialise(spec, state.weights))
    cfg = FisherParams(every=2, max_prunes=3, chunk=3, lr=0.01, batch_size=32)
    for _ in range(2):
        state, model, _, _ = prune_step(state, model, digits, cfg, Augment(), rt, 1, spec.flops(), Fisher)
    for name, p in model.named_parameters():
        if p.dim() == 4 and min(p.shape[1:]) > 1:
            assert p.is_contiguous(memory_format=torch.channels_last), name
            m = state.momentum[name]
            assert m.is_contiguous(memory_format=torch.channels_last) and m.shape == p.shape, name
