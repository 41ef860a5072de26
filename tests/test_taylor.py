"""Taylor pruning (Molchanov et al. 2017) against an independent computation, and through the trajectory."""

import torch
import torch.nn.functional as F

from prunestudy.methods import METHODS, method
from prunestudy.methods.taylor import Taylor, TaylorParams
from tests.conftest import captured_scores, tiny_spec


def _by_hand(model, batches):
    """|mean over steps of mean_{n,h,w} a * dL/da| per channel, over each layer's L2 norm: the formula,
    computed with torch.autograd.grad on the activations rather than through hooks."""
    sums = {}
    for x, y in batches:
        acts = {}
        handles = [
            b.tap.register_forward_hook(lambda m, i, out, j=j, acts=acts: acts.__setitem__(j, out))
            for j, b in enumerate(model.blocks)
            if b.has_branch
        ]
        loss = F.cross_entropy(model(x), y)
        for h in handles:
            h.remove()
        grads = torch.autograd.grad(loss, list(acts.values()))
        for (j, a), g in zip(acts.items(), grads, strict=True):
            sums[j] = sums.get(j, 0) + (a * g).mean((0, 2, 3))
    theta = {j: (s / len(batches)).abs() for j, s in sums.items()}
    return {j: v / v.norm() for j, v in theta.items()}


def test_taylor_scores_equal_the_formula_computed_independently():
    torch.manual_seed(0)
    spec = tiny_spec(mids=(3, 0, 4))
    model = spec.build().double()
    batches = [(torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (6,))) for _ in range(3)]
    want = _by_hand(model, batches)
    got = captured_scores(Taylor, model, spec, batches)
    assert set(got) == {"blocks.0", "blocks.2"}
    for j, v in want.items():
        torch.testing.assert_close(got[f"blocks.{j}"], v, rtol=1e-9, atol=1e-15)
        assert abs(float(got[f"blocks.{j}"].norm()) - 1) < 1e-12  # unit norm per layer


def test_taylor_is_registered_and_runs_a_trajectory_like_fisher(digits, tmp_path):
    from prunestudy.pruning.trajectory import PruneState, run_chunk
    from prunestudy.training.data import Augment
    from prunestudy.training.runtime import Runtime

    assert METHODS["taylor"] is method("taylor") is Taylor and Taylor.kind == "iterative"
    spec = tiny_spec(mids=(3, 2, 4))
    torch.manual_seed(0)
    cfg = TaylorParams(every=3, max_prunes=5, chunk=5, lr=0.01, batch_size=32)
    state = run_chunk(
        PruneState(spec, spec.build().state_dict(), {}),
        digits,
        cfg,
        Augment(),
        Runtime.pick("cpu"),
        method=Taylor,
        seed=1,
        base=spec,
        end_step=5,
        steps_dir=tmp_path / "steps",
        resume_path=tmp_path / "resume.pt",
    )
    assert state.step == 5 and sum(state.spec.widths_vector) == sum(spec.widths_vector) - 5
    assert all(r["saliency"] >= 0 for r in state.rows)  # normalised magnitudes
