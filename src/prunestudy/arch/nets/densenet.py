"""The ``nn.Module`` of a :class:`~prunestudy.arch.densenet.DenseNetSpec`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from prunestudy.arch.densenet import DenseNetSpec
from prunestudy.arch.parts import Select, SelectHead, Tap, conv, init_weights


class DenseLayer(nn.Module):
    def __init__(self, spec: DenseNetSpec, i: int):
        super().__init__()
        self.growth = spec.growth
        if not spec.layer_live(i):
            return
        width, sel = spec.read_widths()[i], spec.selection(i)
        self.bn1 = nn.BatchNorm2d(width)
        self.select = Select(sel, width)
        if spec.bc:
            self.conv1 = conv(len(sel), spec.mids[i], 1)
            self.bn2 = nn.BatchNorm2d(spec.mids[i])
            self.tap = Tap()
            self.conv2 = conv(spec.mids[i], spec.growth, 3)
        else:
            self.conv1 = conv(len(sel), spec.growth, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "bn1"):  # an emptied layer adds k zero channels
            new = x.new_zeros(x.shape[0], self.growth, *x.shape[2:])
        else:
            new = self.conv1(F.relu(self.select(self.bn1(x))))
            if hasattr(self, "conv2"):
                new = self.conv2(self.tap(F.relu(self.bn2(new))))
        return torch.cat([x, new], 1)


class Transition(nn.Module):
    def __init__(self, spec: DenseNetSpec, t: int):
        super().__init__()
        i = spec.n_layers + t
        width = spec.read_widths()[i]
        self.bn = nn.BatchNorm2d(width)
        self.select = Select(spec.selection(i), width)
        self.conv = conv(len(spec.selection(i)), spec.transition_out(t), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.select(self.bn(x)))), 2)


class DenseNet(nn.Module):
    def __init__(self, spec: DenseNetSpec):
        super().__init__()
        self.spec = spec
        self.stem = conv(spec.in_channels, 2 * spec.growth, 3)
        self.layers = nn.ModuleList(DenseLayer(spec, i) for i in range(spec.n_layers))
        self.transitions = nn.ModuleList(Transition(spec, t) for t in range(2))
        self.head = SelectHead(spec.read_widths()[-1], spec.selection(-1), spec.num_classes)
        init_weights(self, spec.bn_gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if (i + 1) % self.spec.per_block == 0 and i + 1 < self.spec.n_layers:
                x = self.transitions[i // self.spec.per_block](x)
        return self.head(x)
