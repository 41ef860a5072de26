"""Liu et al.'s one-shot methods: exact thresholds, rankings, empty-layer rules, masks, Scratch-B ratios."""

import json

import pytest
import torch

from prunestudy.arch import preresnet, resnet, vgg, wrn
from prunestudy.methods.l1norm import L1Norm, L1Params, prune_widths
from prunestudy.methods.magnitude import Magnitude, MagnitudeParams
from prunestudy.methods.slimming import Slimming, SlimmingParams, scales
from prunestudy.pruning import masks
from prunestudy.pruning.arms import SCRATCH_B, plan
from prunestudy.pruning.oneshot import prune_once, redraw_masked
from prunestudy.training.data import Augment
from prunestudy.training.loop import fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime
from tests.conftest import base_train_args, cli, slices

VGG = vgg(cfg=(8, 8, "M", 16, "M", 16, 24), in_channels=1, image_size=8)


def _state(spec, seed=0):
    torch.manual_seed(seed)
    model = spec.build()
    with torch.no_grad():
        for g in spec.groups():  # distinct |gamma| everywhere, so that no tie decides
            if g.scale:
                w = dict(model.named_parameters())[g.scale]
                w.copy_(torch.rand(w.shape) + 0.01)
    return model.state_dict()


@pytest.mark.parametrize("fraction", [0.1, 0.4, 0.75])
def test_slimming_removes_exactly_the_requested_fraction_of_scaled_channels(fraction):
    state = _state(VGG)
    p = Slimming.prune(state, VGG, fraction, SlimmingParams())
    total = sum(g.width for g in VGG.groups())
    removed = sum(len(c) for c in p.removals.values())
    assert removed == p.record["removed"] == int(total * fraction) - 0  # nothing emptied at these fractions
    everything = torch.cat([scales(state, VGG)[g.name] for g in VGG.groups()])
    gone = torch.cat([scales(state, VGG)[n][c] for n, c in p.removals.items()])
    kept_min = min(
        float(scales(state, VGG)[g.name][[i for i in range(g.width) if i not in p.removals.get(g.name, [])]].min())
        for g in VGG.groups()
    )
    assert float(gone.max()) < kept_min  # the smallest |gamma| went, globally
    assert len(everything) == total


def test_slimming_ties_go_to_the_earlier_group_and_position():
    state = _state(VGG)
    for g in VGG.groups():
        state[g.scale] = torch.full_like(state[g.scale], 0.5)
    p = Slimming.prune(state, VGG, 0.1, SlimmingParams())  # 7 of 72 channels, all tied
    assert p.removals == {"layers.0": list(range(7))}


def test_slimming_keeps_one_channel_of_a_plain_layer_it_would_empty_and_records_it():
    state = _state(VGG)
    state["layers.1.bn.weight"] = torch.full((8,), 1e-4)  # a layer the global threshold empties
    state["layers.1.bn.weight"][5] = 2e-4
    p = Slimming.prune(state, VGG, 0.15, SlimmingParams())
    assert p.removals["layers.1"] == [0, 1, 2, 3, 4, 6, 7]  # the largest |gamma| survives
    assert p.record["kept_one"] == ["layers.1"] and p.record["emptied"] == []
    net = prune_once(state, VGG, Slimming, 0.15, SlimmingParams())
    assert net.spec.convs[1] == 1
    assert net.spec.build()(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_slimming_empties_a_residual_branch_and_the_block_becomes_its_shortcut():
    spec = preresnet(14, False, in_channels=1, image_size=8)
    state = _state(spec)
    state["blocks.1.bn2.weight"] = torch.full_like(state["blocks.1.bn2.weight"], 1e-5)
    p = Slimming.prune(state, spec, 0.05, SlimmingParams())
    assert "blocks.1.c1" in p.record["emptied"]
    net = prune_once(state, spec, Slimming, 0.05, SlimmingParams())
    assert not net.spec.blocks()[1].live
    model = net.spec.build()
    model.load_state_dict(net.state)
    assert model(torch.randn(2, 1, 8, 8)).isfinite().all()


def test_slimming_record_threshold_hook_and_settings_by_value():
    state = _state(VGG)
    p = Slimming.prune(state, VGG, 0.25, SlimmingParams())  # 72 channels: the 18 smallest |gamma| go
    everything = torch.cat([scales(state, VGG)[g.name] for g in VGG.groups()])
    assert p.record["channels"] == 72 and p.record["requested"] == 18 == p.record["removed"]
    assert p.record["threshold"] == pytest.approx(float(everything.sort().values[17]))
    assert p.record["rule"].startswith("an emptiable group") and p.record["rule"].endswith("largest |gamma|")
    assert all(c == sorted(c) for c in p.removals.values())
    assert Slimming.prune(state, VGG, 0.001, SlimmingParams()).record["threshold"] == 0.0  # k = 0
    with pytest.raises(ValueError, match=r"sparsity: -0\.0001 is out of range: it must be >= 0"):
        SlimmingParams(sparsity=-1e-4)
    assert Slimming.regulariser(SlimmingParams(sparsity=3e-5), 0.4) == {"sparsity": 3e-5}
    assert SlimmingParams(sparsity=0).sparsity == 0  # no sparsity term: slimming a plainly trained network
    model = VGG.build()
    for q in model.parameters():
        q.grad = torch.zeros_like(q)
    with torch.no_grad():
        model.layers[0].bn.weight[:4] *= -1
    Slimming.hooks(model, None, VGG, {"sparsity": 0.01}).after_backward[0]()
    named = dict(model.named_parameters())
    for g in VGG.groups():  # s x sign(gamma) on every prunable BN scale, nothing anywhere else
        assert torch.equal(named[g.scale].grad, 0.01 * torch.sign(named[g.scale].detach()))
    assert all(bool((q.grad == 0).all()) for n, q in named.items() if n not in {g.scale for g in VGG.groups()})


def test_sparsity_training_drives_gamma_toward_zero(digits):
    spec = VGG
    recipe = Recipe(epochs=3, batch_size=64, lr=0.1, weight_decay=0.0, milestones=())
    rt = Runtime.pick("cpu")

    def mean_gamma(s):
        hooks = (lambda m, o: Slimming.hooks(m, o, spec, {"sparsity": s})) if s else None
        model = fit(spec, digits, recipe, Augment(), seed=1, rt=rt, hooks=hooks).model
        return float(torch.cat([v for v in scales(model.state_dict(), spec).values()]).mean())

    plain, sparse = mean_gamma(0.0), mean_gamma(0.02)
    assert sparse < plain - 0.05


def test_l1_ranks_filters_by_the_sum_of_absolute_weights():
    spec = resnet(8, width=0.5, in_channels=1, image_size=8)  # 3 blocks of 8, 16, 32 mids
    state = _state(spec)
    g = torch.Generator().manual_seed(3)
    for name in ("blocks.0.conv1.weight", "blocks.1.conv1.weight", "blocks.2.conv1.weight"):
        state[name] = torch.randn(state[name].shape, generator=g)  # negative weights included
    settings = {"X": {"ratios": [0.5, 0.25, 0.75]}}
    p = L1Norm.prune(state, spec, "X", L1Params(settings))
    for i, ratio in enumerate([0.5, 0.25, 0.75]):
        w = state[f"blocks.{i}.conv1.weight"]
        norms = [float(w[f].abs().sum()) for f in range(w.shape[0])]  # brute force, per filter
        keep = int(w.shape[0] * (1 - ratio))
        expected_gone = sorted(sorted(range(w.shape[0]), key=lambda f: -norms[f])[keep:])
        assert p.removals[f"blocks.{i}"] == expected_gone
        signed = [float(w[f].sum()) for f in range(w.shape[0])]
        assert expected_gone != sorted(sorted(range(w.shape[0]), key=lambda f: -signed[f])[keep:])


def test_l1_settings_keep_the_given_widths_and_skip_blocks():
    spec = resnet(14, width=0.5, in_channels=1, image_size=8)
    p = prune_once(_state(spec), spec, L1Norm, "A", L1Params({"A": {"ratios": [0.5, 0.5, 0.5], "skip": [0, 3]}}))
    assert p.spec.mids == (8, 4, 8, 16, 16, 16)  # blocks 0 and 3 skipped, the rest halved
    with pytest.raises(ValueError, match="cannot keep 0"):
        prune_widths(VGG, {"widths": [0, 8, 16, 16, 24]})


def test_l1_settings_are_checked_and_ties_keep_the_earlier_filter():
    for bad, match in (
        ({"A": {"ratio": [0.5]}}, "needs 'widths', or 'ratios'"),
        ({"A": {"widths": [1], "skip": [0]}}, "needs 'widths'"),
        ({"A": {"ratios": [0.5, 1.0, 0.2]}}, r"ratios must lie in \[0, 1\)"),
        ({"A": {"ratios": [-0.1, 0.2, 0.2]}}, "ratios must lie"),
    ):
        with pytest.raises(ValueError, match=match):
            L1Params(bad)
    L1Params({"A": {"ratios": [0.0, 0.0, 0.9]}})  # 0 is allowed: the stage stays whole
    spec = resnet(8, width=0.5, in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="give one ratio per stage"):
        prune_widths(spec, {"ratios": [0.5, 0.5]})
    with pytest.raises(ValueError, match="defined for CIFAR ResNets"):
        prune_widths(VGG, {"ratios": [0.5, 0.5, 0.5]})
    with pytest.raises(ValueError, match="4 widths for the 5 groups"):
        prune_widths(VGG, {"widths": [8, 8, 16, 16]})
    with pytest.raises(ValueError, match="cannot keep 9 of its 8"):
        prune_widths(VGG, {"widths": [9, 8, 16, 16, 24]})
    assert prune_widths(spec, {"ratios": [0.5, 0.25, 0.75]}) == [4, 12, 8]  # int(8 x .5), int(16 x .75), ...
    state = _state(spec)
    state["blocks.0.conv1.weight"] = torch.ones_like(state["blocks.0.conv1.weight"])  # every filter tied
    with pytest.raises(ValueError, match="no L1 setting 'B'; settings are \\['A'\\]"):
        L1Norm.prune(state, spec, "B", L1Params({"A": {"ratios": [0.5, 0.0, 0.0]}}))
    p = L1Norm.prune(state, spec, "A", L1Params({"A": {"ratios": [0.5, 0.0, 0.0]}}))
    assert p.removals == {"blocks.0": [4, 5, 6, 7]}  # the first four of eight tied filters stay
    assert p.record == {"setting": "A", "ratios": [0.5, 0.0, 0.0]}


@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_magnitude_prunes_exactly_the_requested_fraction_of_conv_weights(fraction):
    spec = wrn(10, 1, in_channels=1, image_size=8)
    state = _state(spec)
    p = Magnitude.prune(state, spec, fraction, MagnitudeParams())
    convs = [n for n, t in state.items() if n.endswith(".weight") and t.dim() == 4]
    assert sorted(p.mask) == sorted(convs)  # every conv, shortcut and stem included; no BN, no linear
    total = sum(state[n].numel() for n in convs)
    assert sum(int((~m).sum()) for m in p.mask.values()) == int(total * fraction)
    pruned = torch.cat([state[n][~m].abs() for n, m in p.mask.items()])
    kept = torch.cat([state[n][m].abs() for n, m in p.mask.items()])
    assert float(pruned.max()) <= float(kept.min())


def test_magnitude_mask_and_record_by_hand_ties_to_the_earlier_weight():
    """Two 1x1 convs of four weights, a linear layer and a BN: the linear and the BN are never pruned."""
    state = {
        "a.weight": torch.tensor([0.5, -0.1, 0.3, -0.2]).view(2, 2, 1, 1),
        "bn.weight": torch.tensor([0.01, 0.01]),
        "b.weight": torch.tensor([0.2, 0.05, -0.7, 0.4]).view(2, 2, 1, 1),
        "fc.weight": torch.tensor([[0.001, 0.002]]),
    }
    p = Magnitude.prune(state, None, 0.375, MagnitudeParams())  # 8 conv weights: the 3 smallest |w| go
    assert sorted(p.mask) == ["a.weight", "b.weight"]
    # |w| sorted: .05 (b), .1 (a), .2 (a, earlier), .2 (b), .3, ... -> the tie at the cut goes to a
    assert p.mask["a.weight"].flatten().tolist() == [True, False, True, False]
    assert p.mask["b.weight"].flatten().tolist() == [True, False, True, True]
    assert p.record == {"weights": 8, "pruned": 3, "threshold": pytest.approx(0.2)}
    none = Magnitude.prune(state, None, 0.1, MagnitudeParams())  # int(0.8) = 0 weights
    assert all(bool(m.all()) for m in none.mask.values()) and none.record["threshold"] == 0.0


def test_scratch_b_ratio_comes_from_the_pruned_network_not_the_dense_one(caplog):
    spec = wrn(10, 1, in_channels=1, image_size=8)
    net = prune_once(_state(spec), spec, Magnitude, 0.6, MagnitudeParams())
    recipe = Recipe(epochs=10, batch_size=8, lr=0.1)
    p = plan(SCRATCH_B, spec, recipe, arch=net.spec, arch_flops=net.flops, max_factor=None)
    assert p.extra["flops_ratio"] == pytest.approx(spec.flops() / masks.nonzero_flops(spec, net.mask))
    assert p.recipe.epochs == int(10 * (spec.flops() / net.flops)) > 10
    # the reference's bug (dense FLOPs over dense FLOPs) would give ratio 1: Scratch-E's epochs, said aloud
    with caplog.at_level("WARNING", logger="prunestudy"):
        dense = plan(SCRATCH_B, spec, recipe, arch=net.spec, max_factor=None)
    assert dense.recipe.epochs == 10 and "ratio is 1.0000 <= 1" in caplog.text


def test_masked_scratch_redraws_kept_weights_at_the_masks_fan_in():
    spec = wrn(10, 1, in_channels=1, image_size=8)
    net = prune_once(_state(spec), spec, Magnitude, 0.6, MagnitudeParams())
    torch.manual_seed(0)
    model = spec.build()
    redraw_masked(net.mask)(model)
    w, m = model.blocks[2].conv1.weight, net.mask["blocks.2.conv1.weight"]
    assert bool((w[~m] == 0).all())
    n = float(m.sum()) / w.shape[1]
    assert float(w.detach()[m].std()) == pytest.approx((2 / n) ** 0.5, rel=0.15)


def _oneshot_args(cfg, base_model, out, method, target, prune):
    return [
        "oneshot",
        "--seed",
        "1",
        "--device",
        "cpu",
        "--method",
        method,
        "--target",
        target,
        "--base-model",
        str(base_model),
        "--base-identity",
        json.dumps({"experiment": "test", "arm": "base", "seed": 1, "slot": None}),
        "--out",
        str(out),
        "--prune",
        json.dumps(prune),
        "--finetune",
        json.dumps({"epochs": 2, "batch_size": 64, "lr": 0.002, "schedule": "constant"}),
        *slices(cfg, "data", "model"),
    ]


def test_the_oneshot_command_prunes_fine_tunes_and_keeps_the_mask(cfg, tmp_path):
    cfg = {**cfg, "model": {"family": "wrn", "depth": 10, "width": 1}}
    cli(*base_train_args(cfg, tmp_path / "base", 1, []))
    out = tmp_path / "pruned"
    cli(*_oneshot_args(cfg, tmp_path / "base/model.pt", out, "magnitude", "0.5", {}))
    m = json.loads((out / "metrics.json").read_text())
    spec, mask = masks.load(out / "mask.pt")
    state = torch.load(out / "model.pt", weights_only=True)["state"]
    assert all(bool((state[n][~k] == 0).all()) for n, k in mask.items())  # fine-tuning kept them at zero
    assert m["arm"] == "pruned" and m["params"] == masks.nonzero_params(spec, mask) < m["extra"]["dense_params"]
    # a base checkpoint of another network is refused, naming both
    other = {**cfg, "model": {"family": "wrn", "depth": 10, "width": 2}}
    res = cli(*_oneshot_args(other, tmp_path / "base/model.pt", tmp_path / "x", "magnitude", "0.5", {}), check=False)
    assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1
    assert "expected a network of the experiment's model 'wrn10-" in res.stderr and "found 'wrn10-" in res.stderr


def test_one_apg_step_against_a_hand_computation():
    from prunestudy.methods.sss import apg_step

    lam = torch.tensor([1.0, 0.05, 0.0, 0.3])
    v = torch.tensor([0.2, 0.0, 0.0, -0.1])
    g = torch.tensor([0.5, 2.0, -3.0, 0.0])
    lr, mu, gamma = 0.1, 0.9, 0.2
    apg_step(lam, g, v, lr, mu, gamma)
    # by hand: z = soft(lam - lr g, lr gamma); v = z - lam + mu v; lam = max(0, z + mu v)
    # 1: z = soft(0.95, 0.02) = 0.93; v = 0.93 - 1 + 0.18 = 0.11; lam = 0.93 + 0.099 = 1.029
    # 2: z = soft(-0.15, 0.02) = -0.13; v = -0.13 - 0.05 + 0 = -0.18; lam = max(0, -0.13 - 0.162) = 0
    # 3: a zero factor revives: z = soft(0.3, 0.02) = 0.28; v = 0.28 - 0 + 0 = 0.28; lam = 0.28 + 0.252 = 0.532
    # 4: z = soft(0.3, 0.02) = 0.28; v = 0.28 - 0.3 - 0.09 = -0.11; lam = 0.28 - 0.099 = 0.181
    # (2 keeps its velocity -0.18: the reference clips the factor, never the velocity)
    torch.testing.assert_close(lam, torch.tensor([1.029, 0.0, 0.532, 0.181]))
    torch.testing.assert_close(v, torch.tensor([0.11, -0.18, 0.28, -0.11]))


def test_sss_removes_blocks_whose_factor_is_zero_and_folds_the_others():
    from prunestudy.methods.sss import SSS, SSSParams

    spec = resnet(14, width=0.5, gates=True, in_channels=1, image_size=8)
    torch.manual_seed(0)
    model = spec.build().eval()
    with torch.no_grad():
        model.blocks[1].gate.zero_()
        model.blocks[4].gate.fill_(0.3)
    x = torch.randn(3, 1, 8, 8)
    before = model(x)
    net = prune_once(model.state_dict(), spec, SSS, 0.01, SSSParams())
    assert not net.spec.gates and net.spec.mids[1] == 0 and net.spec.mids[4] == 32
    assert net.record["blocks_per_stage"] == [1, 2, 2] and net.record["factors"]["blocks.1"] == 0.0
    pruned = net.spec.build().eval()
    pruned.load_state_dict(net.state)
    torch.testing.assert_close(pruned(x), before, atol=1e-5, rtol=0)  # the same function, fewer blocks
    assert sum(p.numel() for p in pruned.parameters()) == net.spec.param_count()


def test_sss_training_drives_factors_to_zero(digits):
    from prunestudy.methods.sss import SSS

    spec = resnet(14, width=0.5, gates=True, in_channels=1, image_size=8)
    seen = []

    def hooks(model, opt):
        h = SSS.hooks(model, opt, spec, {"gamma": 0.5})
        gates = [p for n, p in model.named_parameters() if n.endswith(".gate")]
        h.after_step.append(lambda: seen.append([float(p.detach()) for p in gates]))
        return h

    recipe = Recipe(epochs=2, batch_size=64, lr=0.1, milestones=())
    fit(spec, digits, recipe, Augment(), seed=1, rt=Runtime.pick("cpu"), hooks=hooks)
    assert any(v == 0.0 for v in seen[-1])


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("kind", ["slimming", "sss", "masked-finetune"])
def test_an_interrupted_regularised_or_masked_run_resumes_to_identical_weights(digits, tmp_path, kind):
    from prunestudy.methods.sss import SSS

    rt = Runtime.pick("cpu")
    recipe = Recipe(epochs=3, batch_size=64, lr=0.1, milestones=(2,))
    if kind == "slimming":
        spec = VGG
        make, init = (lambda m, o: Slimming.hooks(m, o, spec, {"sparsity": 0.02})), None
    elif kind == "sss":
        spec = resnet(14, width=0.5, gates=True, in_channels=1, image_size=8)
        make, init = (lambda m, o: SSS.hooks(m, o, spec, {"gamma": 0.05})), None
    else:
        spec = wrn(10, 1, in_channels=1, image_size=8)
        pruned = prune_once(_state(spec), spec, Magnitude, 0.5, MagnitudeParams())
        make = lambda m, o: masks.hooks(m, o, pruned.mask)  # noqa: E731
        from prunestudy.pruning.oneshot import load_weights

        init = load_weights(pruned.state)

    def run(resume, stop_at=None):
        steps = []

        def hooks(m, o):
            h = make(m, o)

            def count():
                steps.append(1)
                if stop_at and len(steps) == stop_at:
                    raise _Interrupt

            h.after_step.append(count)
            return h

        return fit(
            spec, digits, recipe, Augment(), seed=3, rt=rt, resume_path=resume, resume_key="k", hooks=hooks, init=init
        )

    whole = run(tmp_path / "a.pt").model.state_dict()
    with pytest.raises(_Interrupt):
        run(tmp_path / "b.pt", stop_at=25)  # mid-way through the second epoch
    resumed = run(tmp_path / "b.pt").model.state_dict()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_sss_settings_by_value():
    from prunestudy.methods.sss import SSS, SSSParams

    with pytest.raises(ValueError, match="CIFAR ResNets"):
        SSS.base_options({"family": "vgg", "name": "vgg16"})
    assert SSS.base_options({"family": "resnet", "depth": 56}) == {"family": "resnet", "depth": 56, "gates": True}
    assert SSS.regulariser(SSSParams(), 0.02) == {"gamma": 0.02}
    spec = resnet(8, width=0.5, gates=True, in_channels=1, image_size=8)
    state = spec.build().state_dict()
    p = SSS.prune(state, spec, 0.02, SSSParams())
    assert p.removals == {} and p.record["gamma"] == 0.02 and p.record["blocks_per_stage"] == [1, 1, 1]
    assert p.record["factors"] == {"blocks.0": 1.0, "blocks.1": 1.0, "blocks.2": 1.0}


def test_l1_per_stage_ratios_are_refused_for_a_preresnet_though_it_has_stages():
    with pytest.raises(ValueError, match=r"^per-stage ratios are defined for CIFAR ResNets \(family resnet\); give"):
        prune_widths(preresnet(20, False, in_channels=1, image_size=8), {"ratios": [0.5, 0.5, 0.5]})


def test_l1_widths_may_empty_a_residual_branch_but_not_a_plain_layer():
    spec = resnet(8, width=0.5, in_channels=1, image_size=8)
    assert prune_widths(spec, {"widths": [0, 1, 32]}) == [0, 1, 32]  # a branch emptied, one kept, all kept
    assert prune_widths(VGG, {"widths": [1, 1, 1, 1, 1]}) == [1, 1, 1, 1, 1]
    with pytest.raises(ValueError, match=r"group layers\.0 cannot keep 0 of its 8 channels"):
        prune_widths(VGG, {"widths": [0, 8, 16, 16, 24]})


def test_l1_refuses_a_group_that_is_not_a_conv_s_outputs():
    from types import SimpleNamespace

    from prunestudy.arch.base import select_group

    group = select_group("select", (0, 1, 2), "bn", "conv.weight")  # input columns of a conv: no filters to rank
    spec = SimpleNamespace(groups=lambda: [group], spec_id="selection")
    with pytest.raises(ValueError, match="group select is not a conv's outputs; L1 ranks filters"):
        L1Norm.prune({}, spec, "A", L1Params({"A": {"widths": [2]}}))


def test_slimming_scores_each_live_scaled_group_by_the_bn_channels_it_reads():
    from types import SimpleNamespace

    from prunestudy.arch.base import Group, select_group

    gamma = torch.tensor([-0.4, 0.1, -0.3])
    state = {"bn0.weight": gamma, "bn1.weight": gamma, "bn3.weight": gamma}
    groups = [
        Group("emptied", 0, (), scale="bn0.weight"),  # width 0: removed already, though its BN is in the state
        Group("unscaled", 3, ()),
        Group("absent", 3, (), scale="bn2.weight"),
        select_group("select", (2, 0), "bn1", "conv.weight"),
        Group("plain", 3, (), scale="bn3.weight"),
    ]
    got = scales(state, SimpleNamespace(groups=lambda: groups))
    assert list(got) == ["select", "plain"]
    assert got["select"].tolist() == pytest.approx([0.3, 0.4]) and got["plain"].tolist() == pytest.approx(
        [0.4, 0.1, 0.3]
    )
