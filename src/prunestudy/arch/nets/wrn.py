"""The ``nn.Module`` of a :class:`~prunestudy.arch.wrn.WRNSpec` (see that module for the rules)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.parts import Tap, conv, init_weights
from prunestudy.arch.wrn import BlockSpec, WRNSpec


class Block(nn.Module):
    def __init__(self, b: BlockSpec):
        super().__init__()
        self.projects, self.has_branch = b.projects, b.mid > 0
        if self.projects or self.has_branch:
            self.bn1 = nn.BatchNorm2d(b.in_ch)
        self.stride = b.stride
        if self.projects:
            self.shortcut = conv(b.in_ch, b.out_ch, 1)
        if self.has_branch:
            self.conv1 = conv(b.in_ch, b.mid, 3, b.stride)
            self.bn2 = nn.BatchNorm2d(b.mid)
            self.tap = Tap()
            self.conv2 = conv(b.mid, b.out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.projects or self.has_branch):
            return x
        o = F.relu(self.bn1(x))
        skip = self.shortcut(o[:, :, :: self.stride, :: self.stride]) if self.projects else x
        if not self.has_branch:
            return skip
        h = self.tap(F.relu(self.bn2(self.conv1(o))))
        return skip + self.conv2(h)


class Head(nn.Module):
    """Final BN-ReLU, global average pool and the classifier."""

    def __init__(self, width: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(width)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.bn(x)).mean((2, 3)))


class WideResNet(nn.Module):
    def __init__(self, spec: WRNSpec):
        super().__init__()
        self.spec = spec
        self.stem = conv(spec.in_channels, spec.widths[0], 3)
        self.blocks = nn.ModuleList(Block(b) for b in spec.blocks)
        self.head = Head(spec.widths[3], spec.num_classes)
        init_weights(self, bn_gamma=1.0)  # Crowley et al.: BN gamma 1, FC bias 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
