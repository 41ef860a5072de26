"""The ``nn.Module`` of a :class:`~prunestudy.arch.mobilenetv2.MobileNetV2Spec` (see that module for the rules).

Init as torchvision's ``mobilenet_v2``: He-normal convs with torch's fan_out (k^2 x out channels, also
for a depthwise conv, whose weight is [out, 1, k, k]), BN gamma 1 and beta 0, linear N(0, 0.01) with
bias 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.mobilenetv2 import InvertedBlock, MobileNetV2Spec
from prunestudy.arch.parts import Tap, conv, init_weights


class InvertedResidual(nn.Module):
    """[expand-BN-ReLU6] depthwise-BN-ReLU6-tap project-BN, plus the input where the block is residual.

    An emptied (residual) block has no modules at all and returns its input.
    """

    def __init__(self, b: InvertedBlock):
        super().__init__()
        self.residual, self.live, self.expands = b.residual, b.hidden > 0, b.expands and b.hidden > 0
        if self.expands:
            self.expand = conv(b.in_ch, b.hidden, 1)
            self.bn1 = nn.BatchNorm2d(b.hidden)
        if self.live:
            self.dw = conv(b.hidden, b.hidden, 3, b.stride, groups=b.hidden)
            self.bn2 = nn.BatchNorm2d(b.hidden)
            self.tap = Tap()
            self.project = conv(b.hidden, b.out_ch, 1)
            self.bn3 = nn.BatchNorm2d(b.out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.live:
            return x
        h = F.relu6(self.bn1(self.expand(x))) if self.expands else x
        h = self.bn3(self.project(self.tap(F.relu6(self.bn2(self.dw(h))))))
        return x + h if self.residual else h


class MobileNetV2(nn.Module):
    def __init__(self, spec: MobileNetV2Spec):
        super().__init__()
        self.spec = spec
        self.stem = conv(spec.in_channels, spec.stem, 3)
        self.bn = nn.BatchNorm2d(spec.stem)
        self.blocks = nn.ModuleList(InvertedResidual(b) for b in spec.blocks())
        self.last = conv(spec.outs[-1], spec.last, 1)
        self.bn_last = nn.BatchNorm2d(spec.last)
        self.fc = nn.Linear(spec.last, spec.num_classes)
        init_weights(self, bn_gamma=1.0, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.fc(F.relu6(self.bn_last(self.last(x))).mean((2, 3)))
