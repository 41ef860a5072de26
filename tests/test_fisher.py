import pytest
import torch
import torch.nn.functional as F

from prunestudy.methods.fisher import Fisher
from prunestudy.methods.selectors import one_at_a_time as choose_channel
from tests.conftest import captured_scores, tiny_spec


def _brute_force(model, batches):
    """Delta by the formula, from per-example losses computed one example at a time (eval-mode BN)."""
    totals = {}
    for x, y in batches:
        n = len(y)
        per_batch = {}
        for i in range(n):
            acts: dict = {}
            handles = [
                b.tap.register_forward_hook(lambda m, inp, out, j=j, acts=acts: acts.__setitem__(j, out))
                for j, b in enumerate(model.blocks)
                if b.has_branch
            ]
            loss_i = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
            for h in handles:
                h.remove()
            grads = torch.autograd.grad(loss_i, list(acts.values()))
            for (j, a), g in zip(acts.items(), grads, strict=True):
                # batch-mean loss: dL/da_n = (1/N) dL_n/da_n
                s = (a * g / n).sum((2, 3))[0]
                per_batch[j] = per_batch.get(j, 0) + 0.5 * s.pow(2) / n
        for j, v in per_batch.items():
            totals[j] = totals.get(j, 0) + v
    return {j: v / len(batches) for j, v in totals.items()}


def test_accumulated_saliency_matches_brute_force():
    torch.manual_seed(0)
    spec = tiny_spec(mids=(3, 0, 4))
    model = spec.build().double().eval()
    batches = [(torch.randn(5, 1, 8, 8, dtype=torch.float64), torch.randint(0, 10, (5,))) for _ in range(3)]
    got = captured_scores(Fisher, model, spec, batches)
    want = _brute_force(model, batches)
    assert set(got) == {"blocks.0", "blocks.2"}
    for j in want:
        torch.testing.assert_close(got[f"blocks.{j}"].double(), want[j], rtol=1e-9, atol=1e-15)


def test_choose_channel_is_global_argmin_and_skips_empty_blocks():
    spec = tiny_spec(mids=(3, 0, 2))
    sal = {"blocks.0": torch.tensor([0.5, 0.2, 0.9]), "blocks.2": torch.tensor([0.3, 0.1])}
    assert choose_channel(sal, spec)[:2] == (2, 1)
    sal["blocks.0"][1] = 0.05
    assert choose_channel(sal, spec)[:2] == (0, 1)


def test_flops_weight_prefers_channels_that_save_more():
    spec = tiny_spec(mids=(3, 3, 3))
    sal = {f"blocks.{b}": torch.full((3,), 1e-3) for b in range(3)}
    block_costs = []
    for b in range(3):
        fewer = list(spec.mids)
        fewer[b] -= 1
        block_costs.append(spec.flops() - spec.with_widths(fewer).flops())
    assert choose_channel(sal, spec, flops_weight=1.0)[0] == max(range(3), key=block_costs.__getitem__)


def test_capture_raises_no_warnings():
    import warnings

    model = tiny_spec().build()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capture = Fisher.watch(model, tiny_spec())
        F.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3])).backward()
        capture.step()
        capture.close()
    assert set(capture.scores()) == {"blocks.0", "blocks.1", "blocks.2"}


def test_fisher_settings_give_the_tuning_recipe_and_the_chunks():
    from prunestudy.methods.fisher import FisherParams
    from prunestudy.training.recipe import Recipe

    p = FisherParams(max_prunes=250, chunk=100, lr=0.002, batch_size=64, momentum=0.8, weight_decay=1e-4)
    assert p.recipe == Recipe(epochs=1, batch_size=64, lr=0.002, momentum=0.8, weight_decay=1e-4, schedule="constant")
    assert p.chunks == 3 and [p.chunk_range(c) for c in range(3)] == [(0, 100), (100, 200), (200, 250)]
    assert FisherParams(max_prunes=200, chunk=100).chunks == 2


def test_saliency_is_the_mean_over_steps_and_a_closed_capture_stops_counting():
    spec = tiny_spec()
    model = spec.build()
    capture = Fisher.watch(model, spec)
    with pytest.raises(RuntimeError, match="no fine-tuning step"):
        capture.scores()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    F.cross_entropy(model(x), y).backward()
    capture.step()
    once = {k: v.clone() for k, v in capture.scores().items()}
    F.cross_entropy(model(x), y).backward()  # the same batch again: the same Delta, summed
    capture.step()
    assert all(torch.allclose(capture.scores()[k], once[k]) for k in once)
    assert all(torch.allclose(capture.sums[k], 2 * once[k]) for k in once)
    with torch.no_grad():
        model(x)  # no gradient flows: nothing is captured
    capture.close()
    F.cross_entropy(model(x), y).backward()
    assert all(torch.allclose(capture.sums[k], 2 * once[k]) for k in once)


def test_choose_channel_returns_the_score_and_ties_go_to_the_first_group():
    spec = tiny_spec(mids=(3, 3, 3))
    sal = {f"blocks.{b}": torch.tensor([0.3, 0.2, 0.4]) for b in range(3)}
    assert choose_channel(sal, spec) == (0, 1, pytest.approx(0.2))
    beta, base = 2.0, 10 * spec.flops()
    fewer = list(spec.mids)
    fewer[2] -= 1
    saved = (spec.flops() - spec.with_widths(fewer).flops()) / base
    group, channel, score = choose_channel({"blocks.2": sal["blocks.2"]}, spec, beta, base)
    assert (group, channel) == (2, 1) and score == pytest.approx(0.2 - beta * saved)


def test_a_plain_layer_never_offers_its_last_channel():
    from prunestudy.arch import vgg

    spec = vgg(cfg=(4, "M", 1, 3), in_channels=1, image_size=8)  # the middle conv is down to one channel
    sal = {g.name: torch.tensor([0.5] * g.width) for g in spec.groups()}
    sal["layers.1"] = torch.tensor([0.0])  # the lowest score of all, but the layer cannot be emptied
    assert choose_channel(sal, spec)[0] != 1
