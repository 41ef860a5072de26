"""The ``nn.Module`` s of :class:`~prunestudy.arch.resnet.ResNetSpec` and ``PreResNetSpec``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.parts import Select, SelectHead, Tap, conv, init_weights
from prunestudy.arch.resnet import PreBlock, PreResNetSpec, ResNetSpec


class BasicBlock(nn.Module):
    """Li et al.'s block with the option-A shortcut: subsample, then zero channels appended."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, gate: bool = False):
        super().__init__()
        self.stride, self.pad = stride, cout - cin
        if mid:
            self.conv1 = conv(cin, mid, 3, stride)
            self.bn1 = nn.BatchNorm2d(mid)
            self.tap = Tap()
            self.conv2 = conv(mid, cout, 3)
            self.bn2 = nn.BatchNorm2d(cout)
            if gate:
                self.gate = nn.Parameter(torch.ones(1))

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and not self.pad:
            return x
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.pad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        if hasattr(self, "conv1"):
            branch = self.bn2(self.conv2(self.tap(F.relu(self.bn1(self.conv1(x))))))
            out = out + (self.gate * branch if hasattr(self, "gate") else branch)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, spec: ResNetSpec):
        super().__init__()
        self.spec = spec
        self.stem = conv(spec.in_channels, spec.widths[0], 3)
        self.bn = nn.BatchNorm2d(spec.widths[0])
        self.blocks = nn.ModuleList(BasicBlock(*b, gate=spec.gates) for b in spec.blocks())
        self.fc = nn.Linear(spec.widths[2], spec.num_classes)
        init_weights(self, spec.bn_gamma, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.fc(x.mean((2, 3)))


class PreBlockModule(nn.Module):
    """BN-Select-ReLU, then 1x1/3x3/1x1 (bottleneck) or 3x3/3x3 (basic) with BN-ReLU between."""

    def __init__(self, b: PreBlock, bottleneck: bool):
        super().__init__()
        self.stride = b.stride
        if b.projects:
            self.shortcut = conv(b.in_ch, b.out_ch, 1)  # on the subsampled input: see arch.wrn
        if not b.live:
            return
        self.bn1 = nn.BatchNorm2d(b.in_ch)
        self.select = Select(b.select, b.in_ch)
        widths = (len(b.select), *b.mids, b.out_ch)
        kernels = (1, 3, 1) if bottleneck else (3, 3)
        strides = (1, b.stride, 1) if bottleneck else (b.stride, 1)
        for j, (k, s) in enumerate(zip(kernels, strides, strict=True)):
            self.add_module(f"conv{j + 1}", conv(widths[j], widths[j + 1], k, s))
            if j + 1 < len(kernels):
                self.add_module(f"bn{j + 2}", nn.BatchNorm2d(widths[j + 1]))
                self.add_module(f"tap{j + 1}", Tap())
        self.depth = len(kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x[:, :, :: self.stride, :: self.stride]) if hasattr(self, "shortcut") else x
        if not hasattr(self, "bn1"):
            return skip
        h = F.relu(self.select(self.bn1(x)))
        for j in range(1, self.depth):
            h = getattr(self, f"tap{j}")(F.relu(getattr(self, f"bn{j + 1}")(getattr(self, f"conv{j}")(h))))
        return skip + getattr(self, f"conv{self.depth}")(h)


class PreResNet(nn.Module):
    def __init__(self, spec: PreResNetSpec):
        super().__init__()
        self.spec = spec
        self.stem = conv(spec.in_channels, 16, 3)
        self.blocks = nn.ModuleList(PreBlockModule(b, spec.bottleneck) for b in spec.blocks())
        self.head = SelectHead(spec.blocks()[-1].out_ch, spec.head_select, spec.num_classes)
        init_weights(self, spec.bn_gamma, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
