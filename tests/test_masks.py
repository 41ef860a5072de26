"""Masks: pruned weights and their momentum stay exactly zero; counts over nonzeros; tensors-only files."""

import torch

from prunestudy import masks
from prunestudy.arch import vgg, wrn
from prunestudy.data import Augment
from prunestudy.recipe import Recipe
from prunestudy.train import Runtime, fit


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
        masks.apply(model, mask)
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
