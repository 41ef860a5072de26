"""The ``nn.Module`` of a :class:`~prunestudy.arch.vgg.VGGSpec`."""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.parts import Tap, conv, init_weights
from prunestudy.arch.vgg import VGGSpec


class ConvUnit(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = conv(cin, cout, 3)
        self.bn = nn.BatchNorm2d(cout)
        self.tap = Tap()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tap(F.relu(self.bn(self.conv(x))))


class VGG(nn.Module):
    def __init__(self, spec: VGGSpec):
        super().__init__()
        self.spec = spec
        widths = (spec.in_channels, *spec.convs)
        self.layers = nn.ModuleList(ConvUnit(a, b) for a, b in pairwise(widths))
        if spec.hidden:
            self.fc1 = nn.Linear(widths[-1], spec.hidden)
            self.bn_fc = nn.BatchNorm1d(spec.hidden)
            self.fc = nn.Linear(spec.hidden, spec.num_classes)
        else:
            self.fc = nn.Linear(widths[-1], spec.num_classes)
        init_weights(self, spec.bn_gamma, linear_std=0.01)  # Liu et al.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        units = iter(self.layers)
        for c in self.spec.cfg:
            x = F.max_pool2d(x, 2) if c == "M" else next(units)(x)
        x = x.mean((2, 3))
        if self.spec.hidden:
            x = F.relu(self.bn_fc(self.fc1(x)))
        return self.fc(x)
