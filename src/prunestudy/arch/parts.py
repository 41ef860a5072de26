"""Module pieces shared by the families (torch is imported here, never by the spec modules)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A bias-free "same" conv (padding k // 2); ``groups`` = cin = cout makes it depthwise."""
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False)


class Tap(nn.Identity):
    """Marks a prunable activation; activation-based saliency (Fisher) hooks attach here."""


class Select(nn.Module):
    """Liu et al.'s channel selection: pass on the listed input channels, in order.

    The indices are part of the spec, so they are a non-persistent buffer: a state dict holds only
    weights, and a network built from the spec alone selects the same channels.
    """

    def __init__(self, index: tuple[int, ...], width: int):
        super().__init__()
        self.full = tuple(index) == tuple(range(width))
        # built on the CPU even under a meta-device context, so that a materialised network can move it
        self.register_buffer("index", torch.tensor(index, dtype=torch.long, device="cpu"), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.full else x.index_select(1, self.index)


class SelectHead(nn.Module):
    """Final BN-Select-ReLU, global average pool and the classifier (PreResNet, DenseNet)."""

    def __init__(self, width: int, select: tuple[int, ...], num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(width)
        self.select = Select(select, width)
        self.fc = nn.Linear(len(select), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.relu(self.select(self.bn(x))).mean((2, 3)))


def init_weights(model: nn.Module, bn_gamma: float, linear_std: float | None = None) -> None:
    """He-normal convs N(0, sqrt(2/(k^2 C_out))), BN gamma = ``bn_gamma`` and beta 0, linear bias 0.

    C_out is the conv's output channels whatever its ``groups``: torch's fan_out of the weight tensor,
    so a depthwise conv gets what torchvision's ``kaiming_normal_(mode="fan_out")`` gives it.

    ``linear_std`` draws linear weights from N(0, std) (Liu et al.: 0.01); None keeps torch's default.
    Meta-device modules (built only to be loaded) are left alone.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not m.weight.is_meta:
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) and not m.weight.is_meta:
            nn.init.constant_(m.weight, bn_gamma)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and not m.weight.is_meta:
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)
