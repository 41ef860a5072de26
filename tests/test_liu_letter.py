"""The letter of the references: SSS's APG step, Scratch-B's epochs and Liu et al.'s guided stages.

Each test pins one place where this project follows the papers' reference code exactly; where it does
not, docs/deviations.md says so and why.
"""

import subprocess
import sys

import pytest
import torch

from prunestudy.arch import build_spec, densenet, preresnet, resnet, vgg, wrn
from prunestudy.methods.l1norm import target_widths
from prunestudy.methods.sss import SSS, apg_step
from prunestudy.pruning.arms import SCRATCH_B, plan
from prunestudy.pruning.budgets import guided_layer_spec, guided_spec, longest_scratch_b, scratch_b_epochs
from prunestudy.training.data import Augment, Batch
from prunestudy.training.loop import make_optimizer, train_step
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime

# --- Sparse Structure Selection: TuSimple's APG-NAG, step for step ------------------------------------


def test_a_factor_at_zero_revives_and_a_clipped_factor_keeps_its_velocity():
    lr, mu, gamma = 0.1, 0.9, 0.4  # the threshold lr * gamma is 0.04
    lam = torch.tensor([0.0, 0.0, 0.05], dtype=torch.float64)
    v = torch.tensor([0.0, -0.05, 0.0], dtype=torch.float64)
    apg_step(lam, torch.tensor([-1.5, -1.5, 2.0], dtype=torch.float64), v, lr, mu, gamma)
    # by hand: z = soft(lam - lr g, lr gamma); v = mu v + z - lam; lam = max(0, z + mu v)
    # 1: z = soft(0.15) = 0.11; v = 0 + 0.11 = 0.11; lam = 0.11 + 0.099 = 0.209 (freezing: 0)
    # 2: z = 0.11; v = -0.045 + 0.11 = 0.065; lam = 0.11 + 0.0585 = 0.1685 (freezing: 0)
    # 3: z = soft(-0.15) = -0.11; v = -0.11 - 0.05 = -0.16; lam = max(0, -0.11 - 0.144) = 0, v stays -0.16
    torch.testing.assert_close(lam, torch.tensor([0.209, 0.1685, 0.0], dtype=torch.float64))
    torch.testing.assert_close(v, torch.tensor([0.11, 0.065, -0.16], dtype=torch.float64))
    apg_step(lam, torch.tensor([0.0, 0.0, -3.0], dtype=torch.float64), v, lr, mu, gamma)
    # 1: z = soft(0.209) = 0.169; v = 0.099 + 0.169 - 0.209 = 0.059; lam = 0.169 + 0.0531 = 0.2221
    # 2: z = soft(0.1685) = 0.1285; v = 0.0585 - 0.04 = 0.0185; lam = 0.1285 + 0.01665 = 0.14515
    # 3: z = soft(0.3) = 0.26; v = -0.144 + 0.26 = 0.116; lam = 0.26 + 0.1044 = 0.3644 (revived)
    torch.testing.assert_close(lam, torch.tensor([0.2221, 0.14515, 0.3644], dtype=torch.float64))
    torch.testing.assert_close(v, torch.tensor([0.059, 0.0185, 0.116], dtype=torch.float64))


def test_a_weight_decayed_sgd_step_leaves_every_factor_where_apg_puts_it(digits):
    spec = resnet(8, width=0.25, gates=True, in_channels=1, image_size=8)
    torch.manual_seed(0)
    model = spec.build().train()
    opt = make_optimizer(model, Recipe(epochs=1, batch_size=32, lr=0.1, weight_decay=0.05))
    assert opt.groups[0]["weight_decay"] == 0.05
    gamma = 0.01
    hooks = SSS.hooks(model, opt, spec, {"gamma": gamma})
    gates = [p for n, p in model.named_parameters() if n.endswith(".gate")]
    grads: list[torch.Tensor] = []
    hooks.after_backward.insert(0, lambda: grads.__setitem__(slice(None), [p.grad.clone() for p in gates]))
    rt = Runtime.pick("cpu")
    for step in range(3):
        before = [(p.detach().clone(), opt.buffers.get(p, torch.zeros_like(p)).clone()) for p in gates]
        train_step(model, opt, digits, rt, Batch(torch.arange(32 * step, 32 * step + 32)), Augment(), hooks)
        for p, g, (lam, v) in zip(gates, grads, before, strict=True):
            apg_step(lam, g, v, opt.lr, opt.momentum, gamma)
            assert torch.equal(p.detach(), lam) and torch.equal(opt.buffers[p], v), step
            assert p.grad is None  # hidden from SGD: no weight decay, no SGD momentum
    assert all(float(p.detach()) != 1.0 for p in gates)  # the factors did move


# --- Scratch-B: int(E x FLOPs ratio), E where pruning removed nothing --------------------------------


def test_scratch_b_truncates_the_epochs_as_liu_s_scripts():
    assert scratch_b_epochs(160, 1_118_125, 1_000_000, None) == 178  # 178.9: rounding would give 179
    assert scratch_b_epochs(10, 135, 100, None) == 13  # 13.5 truncates
    assert scratch_b_epochs(10, 1399, 1000, None) == 13  # 13.99 truncates
    base = resnet(56)
    a = base.with_widths(target_widths(base, {"ratios": [0.1, 0.1, 0.1], "skip": [7, 9, 18, 26]}))
    assert 178.5 < 160 * base.flops() / a.flops() < 179  # ResNet-56-A here: 178.57
    assert scratch_b_epochs(160, base.flops(), a.flops(), None) == 178  # Liu: 178 epochs, not 179


def test_the_cap_still_applies_after_truncation():
    assert scratch_b_epochs(160, 400, 100, None) == 640  # Liu's CIFAR code: uncapped
    assert scratch_b_epochs(160, 400, 100, 2) == 320
    assert scratch_b_epochs(15, 400, 100, 1.5) == 22  # the cap 1.5 x 15 = 22.5 floors to 22
    assert scratch_b_epochs(15, 101, 100, 1.5) == 15  # under the cap: int(15.15)
    assert longest_scratch_b(10, 400, [300, 100, 200], None) == 40
    assert longest_scratch_b(10, 400, [300, 100, 200], 2) == 20


def test_a_smaller_network_logs_nothing(caplog):
    with caplog.at_level("WARNING", logger="prunestudy"):
        assert scratch_b_epochs(160, 200, 100, None) == 320
    assert caplog.records == []


@pytest.mark.parametrize(("arch_flops", "shown"), [(100, "1.0000"), (125, "0.8000")])
def test_a_network_pruning_left_whole_trains_scratch_e_epochs_with_a_warning(caplog, arch_flops, shown):
    with caplog.at_level("WARNING", logger="prunestudy"):
        assert scratch_b_epochs(160, 100, arch_flops, 2) == 160
        assert scratch_b_epochs(160, 100, arch_flops, None) == 160
    assert len(caplog.records) == 2
    assert all(f"ratio is {shown} <= 1" in r.getMessage() and "160 epochs" in r.getMessage() for r in caplog.records)


def test_plan_trains_an_unpruned_architecture_for_scratch_e_epochs(caplog):
    base = wrn(10, 1, in_channels=1, image_size=8)
    recipe = Recipe(epochs=10, batch_size=8, lr=0.1, milestones=(5, 8))
    with caplog.at_level("WARNING", logger="prunestudy"):
        p = plan(SCRATCH_B, base, recipe, arch=base, max_factor=None)
        longest = longest_scratch_b(10, base.flops(), [base.flops(), base.flops() // 2], None)
    assert p.recipe == recipe and p.extra["flops_ratio"] == 1.0
    assert longest == 20 and "ratio is 1.0000" in caplog.text


# --- Stages: the groups that share a feature-map size ---------------------------------------------------

SPECS = {
    "vgg16": vgg("vgg16"),
    "vgg-cfg": vgg(cfg=(8, 8, "M", 16, "M", 16, 24)),
    "resnet20": resnet(20, width=0.5),
    "wrn16": wrn(16, 1.5),
    "preresnet-bottleneck": preresnet(20, True),
    "preresnet-basic": preresnet(14, False),
    "densenet": densenet(10, 6),
    "densenet-bc": densenet(16, 6, bc=True),
    "mobilenetv2": build_spec({"family": "mobilenetv2", "width": 0.25}, num_classes=10, in_channels=3, image_size=32),
}


@pytest.mark.parametrize("name", SPECS)
def test_stages_partition_the_groups(name):
    spec = SPECS[name]
    flat = [i for stage in spec.stages() for i in stage]
    assert sorted(flat) == list(range(len(spec.groups()))) and all(spec.stages())
    assert spec.with_widths([max(1, w // 2) for w in spec.widths_vector]).stages() == spec.stages()


def test_stages_by_family_by_hand():
    assert vgg("vgg16").stages() == ((0, 1), (2, 3), (4, 5, 6), (7, 8, 9), (10, 11, 12))
    assert vgg(cfg=(8, "M", "M", 16, 16)).stages() == ((0,), (1, 2))
    assert resnet(20).stages() == ((0, 1, 2), (3, 4, 5), (6, 7, 8))
    assert wrn(16, 2).stages() == ((0, 1), (2, 3), (4, 5))
    # PreResNet: per block its selection and mids; the head's selection alone at the end
    assert preresnet(20, True).stages() == (tuple(range(6)), tuple(range(6, 12)), tuple(range(12, 18)), (18,))
    assert preresnet(14, False).stages() == ((0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12,))
    # DenseNet: groups are the layers' selections, then the transitions', then the head's
    assert densenet(10, 6).stages() == ((0, 1, 6), (2, 3, 7), (4, 5), (8,))
    assert densenet(16, 6, bc=True).stages() == ((0, 1, 2, 3, 12), (4, 5, 6, 7, 13), (8, 9, 10, 11), (14,))
    # MobileNetV2 on CIFAR: 24s at 32, 32s at 16, 64s and 96s at 8, 160s and the 320 at 4
    m = SPECS["mobilenetv2"]
    assert m.stages() == ((0, 1), (2, 3, 4), tuple(range(5, 12)), (12, 13, 14, 15))


@pytest.mark.parametrize(
    "name", ["vgg16", "vgg-cfg", "resnet20", "wrn16", "preresnet-basic", "densenet-bc", "mobilenetv2"]
)
def test_the_tapped_groups_of_a_stage_run_at_one_size(name):
    """The activation a group's tap sees has one spatial size per stage (selections have no tap).
    A bottleneck PreResNet is left out: its strided block's first 1x1 conv still reads the larger input."""
    spec = SPECS[name]
    with torch.device("meta"):
        model = spec.build().eval()
        x = torch.empty(2, spec.in_channels, spec.image_size, spec.image_size)
    modules, sizes = dict(model.named_modules()), {}
    for i, g in enumerate(spec.groups()):
        if g.tap is not None:
            modules[g.tap].register_forward_hook(lambda m, a, out, i=i: sizes.__setitem__(i, out.shape[-1]))
    with torch.no_grad():
        model(x)
    assert sizes
    by_stage = [{sizes[i] for i in stage if i in sizes} for stage in spec.stages()]
    assert all(len(s) <= 1 for s in by_stage), by_stage
    seen = [s.pop() for s in by_stage if s]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == len(seen)  # one size each, shrinking


def test_stages_stay_torch_free():
    code = (
        "import sys; from prunestudy.arch import vgg, densenet; "
        "vgg('vgg16').stages(); densenet(40).stages(); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- Guided pruning: Liu et al.'s stage averages --------------------------------------------------------


def _vgg16_run(stage1, stage4, stage5):
    """A pruned VGG-16 with these widths in stages 1, 4 and 5 (stages 2 and 3 left whole)."""
    return vgg("vgg16").with_widths([*stage1, 128, 128, 256, 256, 256, *stage4, *stage5])


def test_guided_vgg16_gives_every_layer_of_a_stage_the_stage_average():
    base = vgg("vgg16")
    assert base.stages()[3] == (7, 8, 9) and base.layers()[14].size == 4  # stage 4: 512-wide convs at 4x4
    runs = [_vgg16_run((32, 64), (110, 70, 40), (300, 200, 100)), _vgg16_run((64, 64), (200, 150, 100), (100,) * 3)]
    # stage 1: run ratios (1/2 + 1) / 2 = 3/4 and 1, mean 7/8 -> 56 each; per layer (32+64)/2 = 48 and 64
    # stage 4: run ratios 220/1536 and 450/1536, mean 670/3072 -> 512 x that = 111.67 -> 112 each;
    #          per layer (110+200)/2 = 155, (70+150)/2 = 110, (40+100)/2 = 70
    # stage 5: run ratios 600/1536 and 300/1536, mean 900/3072 -> 150 each; per layer 200, 150, 100
    assert guided_spec(base, runs).widths_vector == (56, 56, 128, 128, 256, 256, 256, 112, 112, 112, 150, 150, 150)
    assert guided_layer_spec(base, runs).widths_vector == (48, 64, 128, 128, 256, 256, 256, 155, 110, 70, 200, 150, 100)


def test_guided_averages_kept_ratios_over_groups_of_different_widths():
    base = densenet(10, 6)  # stage 0: layer selections of 12 and 18 channels, and the 24-channel transition
    assert [base.widths_vector[i] for i in base.stages()[0]] == [12, 18, 24]
    whole = list(base.widths_vector)
    half, uneven = list(whole), list(whole)
    half[0], half[1], half[6] = 6, 9, 12  # ratios 1/2, 1/2, 1/2
    uneven[0], uneven[1], uneven[6] = 12, 0, 24  # ratios 1, 0, 1: mean 2/3
    guided = guided_spec(base, [base.with_widths(half), base.with_widths(uneven)])
    # mean ratio (1/2 + 2/3) / 2 = 7/12: 12 x 7/12 = 7, 18 x 7/12 = 10.5 -> 10 (halves to even), 24 x 7/12 = 14
    assert [guided.widths_vector[i] for i in base.stages()[0]] == [7, 10, 14]
    assert [guided.widths_vector[i] for i in (2, 3, 7, 4, 5, 8)] == [24, 30, 36, 36, 42, 48]  # untouched stages


def test_guided_keeps_a_group_every_run_removed_removed_and_a_kept_one_alive():
    base = resnet(14, width=0.5, in_channels=1, image_size=8)
    assert base.widths_vector == (8, 8, 16, 16, 32, 32)
    runs = [base.with_widths([8, 0, 16, 4, 32, 0]), base.with_widths([8, 0, 16, 0, 1, 1])]
    # stage 1: ratios 1/2 and 1/2 -> 4; block 1 removed by every run stays 0
    # stage 2: (1 + 1/4) / 2 = 5/8 and 1/2 -> mean 9/16 -> 9 and 9
    # stage 3: (1 + 0) / 2 = 1/2 and (1/32 + 1/32) / 2 = 1/32 -> mean 17/64 -> 8.5 -> 8 each
    assert guided_spec(base, runs).widths_vector == (4, 0, 9, 9, 8, 8)
    tiny = [base.with_widths([1, 1, 1, 1, 1, 1])] * 2
    assert guided_spec(base, tiny).widths_vector == (1, 1, 1, 1, 1, 1)  # 1/8 x 8 = 1; 1/32 x 32 = 1


def test_guided_layer_spec_is_the_former_per_group_construction():
    base = vgg(cfg=(8, 8, "M", 16, 16), in_channels=1, image_size=8)
    runs = [base.with_widths([4, 8, 2, 16]), base.with_widths([6, 7, 5, 15]), base.with_widths([5, 8, 2, 1])]
    # per group: 15/24, 23/24, 9/48, 32/48 -> 5, 7.67 -> 8, 3, 10.67 -> 11
    assert guided_layer_spec(base, runs).widths_vector == (5, 8, 3, 11)
    # per stage: (3/4 + 13/16 + 13/16) / 3 = 19/24 -> 6.33 -> 6; (9/16 + 5/8 + 3/32) / 3 = 41/96 -> 6.83 -> 7
    assert guided_spec(base, runs).widths_vector == (6, 6, 7, 7)
    with pytest.raises(ValueError, match="groups"):
        guided_spec(base, [vgg(cfg=(8, "M", 16), in_channels=1, image_size=8)])
    with pytest.raises(ValueError, match="at least one"):
        guided_layer_spec(base, [])
