"""``nn.Module`` built from an :class:`~prunestudy.spec.ArchSpec`.

Pre-activation WRN basic block, as in Zagoruyko & Komodakis and Crowley et al.'s code:
BN-ReLU-conv3x3(in->mid)-BN-ReLU-conv3x3(mid->out) plus the shortcut. When the block projects, the
shortcut 1x1 conv reads the same BN-ReLU output as conv1. A block whose mid is 0 has no residual
branch and is exactly its shortcut; an identity block with mid 0 is the identity and keeps no BN.

A strided projection subsamples first and then applies a stride-1 1x1 conv: the same function and
the same parameters and FLOPs as a strided 1x1 conv, but it never reaches oneDNN's strided 1x1
backward-weights kernel, which on AVX2 CPUs with channels_last input and fewer than 8 input channels
returns wrong weight gradients and writes past its workspace (uxlfoundation/oneDNN#6035).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.spec import ArchSpec, BlockSpec


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False)


class Tap(nn.Identity):
    """Marks the prunable activation (after BN2+ReLU); Fisher capture hooks attach here."""


class Block(nn.Module):
    def __init__(self, b: BlockSpec):
        super().__init__()
        self.projects, self.has_branch = b.projects, b.mid > 0
        if self.projects or self.has_branch:
            self.bn1 = nn.BatchNorm2d(b.in_ch)
        self.stride = b.stride
        if self.projects:
            self.shortcut = _conv(b.in_ch, b.out_ch, 1)
        if self.has_branch:
            self.conv1 = _conv(b.in_ch, b.mid, 3, b.stride)
            self.bn2 = nn.BatchNorm2d(b.mid)
            self.tap = Tap()
            self.conv2 = _conv(b.mid, b.out_ch, 3)

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
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(x)), 1).flatten(1))


def stem_conv(in_channels: int, width: int) -> nn.Conv2d:
    return _conv(in_channels, width, 3)


class WideResNet(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        self.stem = stem_conv(spec.in_channels, spec.widths[0])
        self.blocks = nn.ModuleList(Block(b) for b in spec.blocks)
        self.head = Head(spec.widths[3], spec.num_classes)
        self._init()

    def _init(self) -> None:
        """Crowley et al.'s init: conv N(0, sqrt(2/(k^2 C_out))), BN gamma=1 beta=0, FC bias 0."""
        if self.stem.weight.is_meta:
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
