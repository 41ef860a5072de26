"""Unstructured masks: a 0/1 tensor per pruned weight that travels beside a spec.

A mask does not change the architecture, so it is not part of the spec: it is saved beside it (as
tensors only) and applied to the network built from it. Training keeps pruned weights exactly zero
by masking the gradient after every backward and re-applying the mask to the weights and their
momentum after every step, so neither weight decay nor momentum can revive a pruned weight.
Params are counted as nonzeros; FLOPs count only the nonzero conv weights (Liu et al.'s
weight-level convention), at each conv's output size.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from prunestudy.arch import ArchSpec, spec_from_json
from prunestudy.io.artifacts import load_checkpoint, save_checkpoint
from prunestudy.methods.base import TrainHooks
from prunestudy.training.optim import SGD

Mask = dict[str, torch.Tensor]  # parameter name -> bool tensor of the parameter's shape


def check(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    for name, m in mask.items():
        if name not in params or params[name].shape != m.shape:
            raise ValueError(f"mask entry {name} {tuple(m.shape)} does not fit the network")


def hooks(model: nn.Module, opt: SGD, mask: Mapping[str, torch.Tensor]) -> TrainHooks:
    """Mask gradients after backward; re-apply the mask to weights and momentum after each step."""
    check(model, mask)
    params = dict(model.named_parameters())
    pairs = [(params[n], m.to(params[n].device, params[n].dtype)) for n, m in mask.items()]

    @torch.no_grad()
    def mask_grads() -> None:
        for p, m in pairs:
            if p.grad is not None:
                p.grad.mul_(m)

    @torch.no_grad()
    def mask_weights() -> None:
        for p, m in pairs:
            p.mul_(m)
            if p in opt.buffers:
                opt.buffers[p].mul_(m)

    return TrainHooks(after_backward=[mask_grads], after_step=[mask_weights])


def nonzero_params(spec: ArchSpec, mask: Mapping[str, torch.Tensor]) -> int:
    """The spec's learnable parameters less the pruned ones."""
    return spec.param_count() - sum(int((~m.bool()).sum()) for m in mask.values())


def conv_output_sizes(spec: ArchSpec) -> dict[str, int]:
    """Output pixels (H x W) of every conv of ``spec``'s network, by weight name (one shape-only pass)."""
    with torch.device("meta"):
        model = spec.build().eval()
    sizes: dict[str, int] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, out, n=n: sizes.__setitem__(f"{n}.weight", out.shape[2] * out.shape[3]))
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        model(torch.empty(1, spec.in_channels, spec.image_size, spec.image_size, device="meta"))
    for h in handles:
        h.remove()
    return sizes


def nonzero_flops(spec: ArchSpec, mask: Mapping[str, torch.Tensor]) -> int:
    """The spec's FLOPs less 2 per pruned conv weight per output pixel (linear layers stay dense)."""
    sizes = conv_output_sizes(spec)
    pruned = sum(2 * int((~m.bool()).sum()) * sizes[n] for n, m in mask.items() if n in sizes)
    return spec.flops() - pruned


def save(path: str | os.PathLike, spec: ArchSpec, mask: Mapping[str, torch.Tensor]) -> None:
    save_checkpoint(path, {"spec": spec.to_json(), "mask": {n: m.bool().cpu() for n, m in mask.items()}})


def load(path: str | os.PathLike) -> tuple[ArchSpec, Mask]:
    d = load_checkpoint(path)
    return spec_from_json(d["spec"]), dict(d["mask"])


def digest(mask: Mapping[str, torch.Tensor]) -> str:
    """A short content hash of a mask: which weights it keeps, by name."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(mask):
        h.update(name.encode())
        h.update(mask[name].bool().cpu().numpy().tobytes())
    return h.hexdigest()[:12]
