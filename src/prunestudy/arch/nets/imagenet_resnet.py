"""The ``nn.Module`` of an :class:`~prunestudy.arch.imagenet_resnet.ImageNetResNetSpec` (see that module).

Module names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer2.0.downsample.0``, ``fc``),
so a torchvision checkpoint loads into the unpruned network as it is; taps and selections hold no state.
Init is torchvision's: He-normal convs with fan_out, BN gamma 1 and beta 0 (the last BN of each branch 0
with ``zero_init_residual``), and torch's default for the linear layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.imagenet_resnet import ImageNetResNetSpec, ResBlock
from prunestudy.arch.parts import Select, Tap, conv


class Projection(nn.Sequential):
    """conv1x1 + BN, named ``downsample.0/1`` as torchvision's; it subsamples before a stride-1 conv
    (the oneDNN#6035 workaround of :mod:`prunestudy.arch.wrn`: same function, weights and FLOPs)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(conv(cin, cout, 1), nn.BatchNorm2d(cout))
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x)


class Block(nn.Module):
    """A basic or bottleneck block; without a live branch it is its shortcut (ReLU of a projection)."""

    def __init__(self, b: ResBlock):
        super().__init__()
        self.live, self.depth = b.live, len(b.mids) + 1
        if b.projects:
            self.downsample = Projection(b.in_ch, b.out_ch, b.stride)
        if not b.live:
            return
        if b.select is not None:
            self.select = Select(b.select, b.in_ch)
        widths = (b.reads, *b.mids, b.out_ch)
        kernels, strides = ((1, 3, 1), (1, b.stride, 1)) if self.depth == 3 else ((3, 3), (b.stride, 1))
        for j, (k, s) in enumerate(zip(kernels, strides, strict=True), start=1):
            self.add_module(f"conv{j}", conv(widths[j - 1], widths[j], k, s))
            self.add_module(f"bn{j}", nn.BatchNorm2d(widths[j]))
            if j < self.depth:
                self.add_module(f"tap{j}", Tap())

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) if hasattr(self, "downsample") else x

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = self.select(x) if hasattr(self, "select") else x
        for j in range(1, self.depth):
            h = getattr(self, f"tap{j}")(F.relu(getattr(self, f"bn{j}")(getattr(self, f"conv{j}")(h))))
        return getattr(self, f"bn{self.depth}")(getattr(self, f"conv{self.depth}")(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.live:  # an identity block's input is a ReLU's output already
            return F.relu(self.downsample(x)) if hasattr(self, "downsample") else x
        return F.relu(self.shortcut(x) + self.branch(x))


class ImageNetResNet(nn.Module):
    def __init__(self, spec: ImageNetResNetSpec):
        super().__init__()
        self.spec = spec
        self.conv1 = nn.Conv2d(spec.in_channels, spec.stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(spec.stem)
        blocks = spec.block_specs()
        for s in range(len(spec.blocks)):
            self.add_module(f"layer{s + 1}", nn.Sequential(*(Block(b) for b in blocks if b.stage == s)))
        self.fc = nn.Linear(spec.planes[-1] * spec.expansion, spec.num_classes)
        _init(self, spec.zero_init_residual)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        for s in range(len(self.spec.blocks)):
            x = getattr(self, f"layer{s + 1}")(x)
        return self.fc(x.mean((2, 3)))


def _init(model: ImageNetResNet, zero_init_residual: bool) -> None:
    """torchvision's init; meta-device modules (built only to be loaded) are left alone."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d) and not m.weight.is_meta:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Block) and m.live and not m.conv1.weight.is_meta:
                nn.init.zeros_(getattr(m, f"bn{m.depth}").weight)
