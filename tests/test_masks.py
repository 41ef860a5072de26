"""Masks: pruned weights and their momentum stay exactly zero; counts over nonzeros; tensors-only files."""

import torch

from prunestudy.arch import vgg, wrn
from prunestudy.pruning import masks
from prunestudy.training.data import Augment
from prunestudy.training.loop import fit
from prunestudy.training.recipe import Recipe
from prunestudy.training.runtime import Runtime


def _random_mask(model, density=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        n: torch.rand(p.shape, generator=g) < density
        for n, p in model.named_parameters()
        if p.dim() == 4  # every conv weight, as Liu's weight-level pruning
    }


def test_masked_training_keeps_pruned_weights_and_momentum_exactly_zero(digits, tmp_path):
    spec = wrn(10, 1, in_channels=1, image_size=8)
    torch.manual_seed(0)
    mask = _random_mask(spec.build())
    seen = []

    def make_hooks(model, opt):
        _zero_pruned(model, mask)
        h = masks.hooks(model, opt, mask)

        def watch():
            params = dict(model.named_parameters())
            for n, m in mask.items():
                p = params[n]
                seen.append(bool((p[~m] == 0).all()) and bool((opt.buffers[p][~m] == 0).all()))
                seen.append(bool((p[m] != 0).any()))  # the rest still trains

        h.after_step.append(watch)
        return h

    recipe = Recipe(epochs=3, batch_size=64, lr=0.1, weight_decay=5e-4, milestones=(2,))
    result = fit(
        spec, digits, recipe, Augment(pad=1, pad_mode="constant"), seed=1, rt=Runtime.pick("cpu"), hooks=make_hooks
    )
    assert seen and all(seen)
    params = dict(result.model.named_parameters())
    assert all(bool((params[n][~m] == 0).all()) for n, m in mask.items())
    assert result.val_error < 0.5  # it learned


def test_counts_are_over_nonzero_weights():
    spec = vgg(cfg=(8, "M", 16, 16), in_channels=1, image_size=8)
    model = spec.build()
    full = {n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters() if p.dim() == 4}
    assert masks.nonzero_params(spec, full) == spec.param_count()
    assert masks.nonzero_flops(spec, full) == spec.flops()
    mask = dict(full)
    mask["layers.1.conv.weight"] = torch.zeros_like(full["layers.1.conv.weight"])
    mask["layers.1.conv.weight"][0, 0, 0, 0] = True
    removed = 16 * 8 * 9 - 1
    assert masks.nonzero_params(spec, mask) == spec.param_count() - removed
    assert masks.nonzero_flops(spec, mask) == spec.flops() - 2 * removed * 4 * 4  # layers.1 runs at 4x4


def test_a_mask_saves_as_tensors_and_loads_beside_its_spec(tmp_path):
    spec = wrn(10, 1, in_channels=1, image_size=8)
    mask = _random_mask(spec.build())
    masks.save(tmp_path / "mask.pt", spec, mask)
    again_spec, again = masks.load(tmp_path / "mask.pt")
    assert again_spec == spec and again.keys() == mask.keys()
    assert all(torch.equal(again[n], mask[n]) for n in mask)


def test_a_mask_that_does_not_fit_the_network_is_refused_by_name():
    import pytest

    model = vgg(cfg=(8, "M", 16, 16), in_channels=1, image_size=8).build()
    shape = dict(model.named_parameters())["layers.1.conv.weight"].shape
    with pytest.raises(ValueError, match=r"layers\.9\.conv\.weight"):
        masks.check(model, {"layers.9.conv.weight": torch.ones(shape, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"layers\.1\.conv\.weight \(1, 1, 3, 3\)"):
        masks.check(model, {"layers.1.conv.weight": torch.ones(1, 1, 3, 3, dtype=torch.bool)})


def test_apply_and_the_hooks_zero_exactly_the_pruned_entries():
    from prunestudy.training.optim import SGD

    model = vgg(cfg=(8, "M", 16, 16), in_channels=1, image_size=8).build()
    name = "layers.0.conv.weight"
    p = dict(model.named_parameters())[name]
    mask = {name: torch.rand(p.shape, generator=torch.Generator().manual_seed(0)) < 0.5}
    before = p.detach().clone()
    _zero_pruned(model, mask)
    assert torch.equal(p.detach(), before * mask[name])
    opt = SGD(list(model.parameters()), lr=0.1, momentum=0.9)
    h = masks.hooks(model, opt, mask)
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    h.after_backward[0]()
    assert bool((p.grad[~mask[name]] == 0).all()) and bool((p.grad[mask[name]] != 0).any())
    with torch.no_grad():
        p.add_(1.0)  # as if a step (with weight decay) moved every weight
    opt.buffers[p] = torch.ones_like(p)
    h.after_step[0]()
    assert bool((p[~mask[name]] == 0).all()) and bool((p[mask[name]] != 0).all())
    assert torch.equal(opt.buffers[p], mask[name].float())


def test_conv_output_sizes_and_the_digest():
    spec = vgg(cfg=(8, "M", 16, 16), in_channels=1, image_size=8)
    assert masks.conv_output_sizes(spec) == {
        "layers.0.conv.weight": 64,
        "layers.1.conv.weight": 16,
        "layers.2.conv.weight": 16,
    }
    a = {"x": torch.tensor([True, False]), "y": torch.tensor([True])}
    assert masks.digest(a) == masks.digest({"y": torch.tensor([1]), "x": torch.tensor([1, 0])})  # order, dtype
    assert masks.digest(a) != masks.digest({"x": torch.tensor([False, True]), "y": torch.tensor([True])})
    assert masks.digest(a) != masks.digest({"z": torch.tensor([True, False]), "y": torch.tensor([True])})


@torch.no_grad()
def _zero_pruned(model, mask):
    params = dict(model.named_parameters())
    for name, m in mask.items():
        params[name].mul_(m)
