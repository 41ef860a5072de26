"""The ``nn.Module`` of an :class:`~prunestudy.arch.imagenet_vgg.ImageNetVGGSpec` (see that module for the rules).

Init as torchvision's VGG: He-normal convs with fan_out and zero bias, BN gamma ``bn_gamma`` (torchvision:
1; Liu's slimming VGG-11: 0.5) and beta 0, linear weights N(0, 0.01) and bias 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.imagenet_vgg import POOL, ImageNetVGGSpec
from prunestudy.arch.parts import Tap


class ConvUnit(nn.Module):
    """conv3x3 (with a bias, as torchvision's) - [BN] - ReLU - tap."""

    def __init__(self, cin: int, cout: int, batch_norm: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        if batch_norm:
            self.bn = nn.BatchNorm2d(cout)
        self.tap = Tap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.tap(F.relu(self.bn(x) if hasattr(self, "bn") else x))


class PooledLinear(nn.Module):
    """A linear layer over a channels x 7 x 7 map whose weight is stored [out, channels, 49].

    The same function and parameters as torchvision's Linear(channels x 49, out) after flatten, but one
    channel's 49 columns are one index of dimension 1, so a conv group slices them as it slices a conv's
    input channels. A 3-d weight is also left alone by ``model.to(memory_format=torch.channels_last)``,
    so the forward reshape stays a view.
    """

    def __init__(self, channels: int, out: int, side: int = POOL):
        super().__init__()
        self.side = side
        self.weight = nn.Parameter(torch.empty(out, channels, side * side))
        self.bias = nn.Parameter(torch.empty(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(x, self.side)
        return F.linear(x.flatten(1), self.weight.flatten(1), self.bias)


class Hidden(nn.Module):
    """A hidden linear layer - [BN1d] - ReLU - [Dropout]."""

    def __init__(self, fc: nn.Module, width: int, bn: bool, dropout: float):
        super().__init__()
        self.fc = fc
        if bn:
            self.bn = nn.BatchNorm1d(width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        x = F.relu(self.bn(x) if hasattr(self, "bn") else x)
        return F.dropout(x, self.dropout, self.training) if self.dropout else x


class ImageNetVGG(nn.Module):
    def __init__(self, spec: ImageNetVGGSpec):
        super().__init__()
        self.spec = spec
        widths = (spec.in_channels, *spec.convs)
        self.layers = nn.ModuleList(ConvUnit(a, b, spec.batch_norm) for a, b in pairwise(widths))
        ins, outs = (spec.convs[-1], *spec.hidden), (*spec.hidden, spec.num_classes)
        linears = [_linear(a, b, spec.head == "fc" and k == 0) for k, (a, b) in enumerate(zip(ins, outs, strict=True))]
        self.hidden = nn.ModuleList(
            Hidden(fc, w, spec.classifier_bn, spec.dropout) for fc, w in zip(linears, spec.hidden, strict=False)
        )
        self.fc = linears[-1]
        _init(self, spec.bn_gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        units = iter(self.layers)
        for c in self.spec.cfg:
            x = F.max_pool2d(x, 2) if c == "M" else next(units)(x)
        if self.spec.head == "gap":
            x = x.mean((2, 3))
        for layer in self.hidden:
            x = layer(x)
        return self.fc(x)


def _linear(cin: int, cout: int, pooled: bool) -> nn.Module:
    """The layer that reads the last conv behind the fc head is a PooledLinear; the others are plain."""
    return PooledLinear(cin, cout) if pooled else nn.Linear(cin, cout)


def _init(model: ImageNetVGG, bn_gamma: float) -> None:
    """torchvision's VGG init; meta-device modules (built only to be loaded) are left alone."""
    for m in model.modules():
        if getattr(m, "weight", None) is None or m.weight.is_meta:
            continue
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.constant_(m.weight, bn_gamma)
        elif isinstance(m, nn.Linear | PooledLinear):
            nn.init.normal_(m.weight, 0, 0.01)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)


def torchvision_names(spec: ImageNetVGGSpec) -> dict[str, str]:
    """Our state-dict name -> the name in torchvision's VGG (``features.i``, ``classifier.i``) of the same net.

    torchvision's classifier is Linear, [BN1d], ReLU, [Dropout] per hidden layer, then the last Linear
    (Liu's slimming VGG-11 lays out its BN1d the same way).
    """
    out, i, units = {}, 0, iter(range(len(spec.convs)))
    for c in spec.cfg:
        if c == "M":
            i += 1
            continue
        j = next(units)
        parts = [("conv", ("weight", "bias"))]
        parts += [("bn", ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))] * spec.batch_norm
        for k, (module, tensors) in enumerate(parts):
            out |= {f"layers.{j}.{module}.{t}": f"features.{i + k}.{t}" for t in tensors}
        i += len(parts) + 1  # and the ReLU
    i = 0
    for k in range(len(spec.hidden)):
        out |= {f"hidden.{k}.fc.{t}": f"classifier.{i}.{t}" for t in ("weight", "bias")}
        if spec.classifier_bn:
            bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
            out |= {f"hidden.{k}.bn.{t}": f"classifier.{i + 1}.{t}" for t in bn}
        i += 2 + spec.classifier_bn + (spec.dropout > 0)
    return out | {f"fc.{t}": f"classifier.{i}.{t}" for t in ("weight", "bias")}


def to_torchvision(spec: ImageNetVGGSpec, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in torchvision's names and shapes (the pooled linear weight flattened)."""
    names = torchvision_names(spec)
    return {names[k]: v.flatten(1) if v.dim() == 3 else v for k, v in state.items()}


def load_torchvision(model: ImageNetVGG, state: Mapping[str, torch.Tensor]) -> None:
    """Load a torchvision VGG state dict of the same network (e.g. pretrained ``vgg16_bn``) into ``model``."""
    ours = model.state_dict()
    names = {theirs: mine for mine, theirs in torchvision_names(model.spec).items()}
    model.load_state_dict({names[k]: v.reshape(ours[names[k]].shape) for k, v in state.items()})
