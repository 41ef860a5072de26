"""DenseNets for CIFAR: Liu et al.'s DenseNet-40 (k=12) and Crowley et al.'s DenseNet-BC-100 (k=12).

Three dense blocks of layers that each read the concatenation of everything before them, separated
by transitions (BN-ReLU-conv1x1-avgpool2, ``reduction`` x channels). A layer is BN-Select-ReLU-
conv3x3 (k outputs), or with ``bc`` BN-Select-ReLU-conv1x1(mid)-BN-ReLU-conv3x3(k). The stem gives
2k channels; the head is BN-Select-ReLU-pool-linear.

Prunable groups: each layer's channel selection (the concatenated channels its conv reads; BN1
keeps every channel, as in Liu's slimming code), each BC layer's ``mid`` bottleneck channels
(Crowley et al.'s Fisher pruning), and the selections of the transitions and the head. Growth
channels are not a group: neither paper prunes them. A layer whose selection or mid is emptied
contributes k zero channels to the concatenation and keeps no parameters; transitions and the head
are never emptied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, conv_group, select_group, stages_by
from prunestudy.arch.resnet import _resize
from prunestudy.io.options import Range


@dataclass(frozen=True)
class DenseNetSpec(ArchSpec):
    """``selects``: one per layer, then one per transition (2), then the head's; None = every channel."""

    family: ClassVar[str] = "densenet"
    depth: int
    growth: int
    bc: bool
    mids: tuple[int, ...]
    selects: tuple[tuple[int, ...] | None, ...]
    reduction: float = 1.0
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    bn_gamma: float = 0.5

    def __post_init__(self) -> None:
        per = 6 if self.bc else 3
        if self.depth < per + 4 or (self.depth - 4) % per:
            raise ValueError(f"DenseNet{'-BC' if self.bc else ''} depth must be {per}n+4, got {self.depth}")
        if len(self.mids) != (self.n_layers if self.bc else 0) or (self.mids and min(self.mids) < 0):
            raise ValueError(f"expected {self.n_layers if self.bc else 0} non-negative mids, got {len(self.mids)}")
        if len(self.selects) != self.n_layers + 3:
            raise ValueError(f"expected {self.n_layers + 3} selections, got {len(self.selects)}")
        selects = tuple(None if s is None else tuple(int(i) for i in s) for s in self.selects)
        object.__setattr__(self, "selects", selects)
        object.__setattr__(self, "mids", tuple(int(m) for m in self.mids))
        for s, width in zip(selects, self.read_widths(), strict=True):
            if s is not None and (len(set(s)) != len(s) or any(not 0 <= i < width for i in s)):
                raise ValueError(f"a selection must list distinct channels below {width}, got {s}")
        if any(s == () for s in selects[self.n_layers :]):
            raise ValueError("a transition's or the head's selection cannot be empty")

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """DenseNet-40 or DenseNet-BC-100, as references.yaml writes it."""
        return f"DenseNet-{'BC-' if options.get('bc') else ''}{options['depth']}"

    @property
    def per_block(self) -> int:
        return (self.depth - 4) // (6 if self.bc else 3)

    @property
    def n_layers(self) -> int:
        return 3 * self.per_block

    def read_widths(self) -> list[int]:
        """The channels each layer, each transition and the head choose from, in ``selects`` order."""
        c, layers, transitions = 2 * self.growth, [], []
        for b in range(3):
            for _ in range(self.per_block):
                layers.append(c)
                c += self.growth
            if b < 2:
                transitions.append(c)
                c = int(c * self.reduction)
        return [*layers, *transitions, c]

    def selection(self, i: int) -> tuple[int, ...]:
        s = self.selects[i]
        return tuple(range(self.read_widths()[i])) if s is None else s

    def transition_out(self, t: int) -> int:
        return int(self.read_widths()[self.n_layers + t] * self.reduction)

    def layer_live(self, i: int) -> bool:
        return bool(self.selection(i)) and (not self.bc or self.mids[i] > 0)

    def groups(self) -> tuple[Group, ...]:
        out = []
        for i in range(self.n_layers):
            p = f"layers.{i}"
            out.append(select_group(f"{p}.select", self.selection(i), f"{p}.bn1", f"{p}.conv1.weight"))
            if self.bc:
                mid = conv_group(f"{p}.mid", self.mids[i], f"{p}.conv1", f"{p}.bn2", f"{p}.conv2.weight", f"{p}.tap")
                out.append(mid)
        for t in range(2):
            p, sel = f"transitions.{t}", self.selection(self.n_layers + t)
            out.append(select_group(f"{p}.select", sel, f"{p}.bn", f"{p}.conv.weight", emptiable=False))
        out.append(select_group("head.select", self.selection(-1), "head.bn", "head.fc.weight", emptiable=False))
        return tuple(out)

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """A dense block's groups (selections and mids) with the selection of the transition after it,
        which reads the block's output at its size; the head's selection is a stage of its own."""
        per_layer = 2 if self.bc else 1
        keys = [i // self.per_block for i in range(self.n_layers) for _ in range(per_layer)]
        return stages_by([*keys, 0, 1, "head"])

    def _replace(self, mids: Sequence[int], selects: Sequence[tuple[int, ...] | None]) -> DenseNetSpec:
        reads = self.read_widths()
        selects = [None if s == tuple(range(w)) else s for s, w in zip(selects, reads, strict=True)]
        return DenseNetSpec(
            self.depth,
            self.growth,
            self.bc,
            tuple(mids),
            tuple(selects),
            self.reduction,
            self.num_classes,
            self.in_channels,
            self.image_size,
            self.bn_gamma,
        )

    def _select_names(self) -> list[str]:
        layers = [f"layers.{i}.select" for i in range(self.n_layers)]
        return [*layers, "transitions.0.select", "transitions.1.select", "head.select"]

    def kept(self, keep: Mapping[str, Sequence[int]]) -> DenseNetSpec:
        spec = ArchSpec.kept(self, keep)
        selects = [
            tuple(self.selection(i)[p] for p in keep[name]) if name in keep else self.selects[i]
            for i, name in enumerate(self._select_names())
        ]
        return self._replace(spec.mids, selects)

    def with_widths(self, widths: Sequence[int]) -> DenseNetSpec:
        """Selections of a new width keep their first channels, or add the lowest unselected ones."""
        by_name = dict(zip((g.name for g in self.groups()), widths, strict=True))
        reads = self.read_widths()
        selects = [_resize(self.selection(i), by_name[n], reads[i]) for i, n in enumerate(self._select_names())]
        mids = [by_name[f"layers.{i}.mid"] for i in range(self.n_layers)] if self.bc else []
        return self._replace(mids, selects)

    def layers(self) -> tuple[Layer, ...]:
        size, g = self.image_size, self.growth
        out = [Layer("conv", self.in_channels, 2 * g, 3, size)]
        reads = self.read_widths()
        for i in range(self.n_layers):
            if i and i % self.per_block == 0:
                t = i // self.per_block - 1
                c, sel = reads[self.n_layers + t], len(self.selection(self.n_layers + t))
                out += [Layer("bn", c, c), Layer("conv", sel, self.transition_out(t), 1, size)]
                size //= 2
            if self.layer_live(i):
                out += self._layer(i, reads[i], size)
        c = reads[-1]
        return (*out, Layer("bn", c, c), Layer("linear", len(self.selection(-1)), self.num_classes))

    def _layer(self, i: int, width: int, size: int) -> list[Layer]:
        sel, g = len(self.selection(i)), self.growth
        if not self.bc:
            return [Layer("bn", width, width), Layer("conv", sel, g, 3, size)]
        m = self.mids[i]
        return [
            Layer("bn", width, width),
            Layer("conv", sel, m, 1, size),
            Layer("bn", m, m),
            Layer("conv", m, g, 3, size),
        ]

    @property
    def id_prefix(self) -> str:
        return f"densenet{'bc' if self.bc else ''}{self.depth}"


def densenet(
    depth: Annotated[int, Range(min=7)],
    growth: Annotated[int, Range(min=1)] = 12,
    *,
    bc: bool = False,
    bottleneck: Annotated[float, Range(gt=0, max=1)] = 1.0,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
) -> DenseNetSpec:
    """DenseNet-40 (``bc`` False: reduction 1, BN gamma 0.5 as Liu) or DenseNet-BC (reduction 0.5, gamma 1
    as Crowley); ``bottleneck`` Z sets every BC mid to int(4k x Z)."""
    per = (depth - 4) // (6 if bc else 3)
    mids = tuple(int(4 * growth * bottleneck) for _ in range(3 * per)) if bc else ()
    return DenseNetSpec(
        depth,
        growth,
        bc,
        mids,
        (None,) * (3 * per + 3),
        0.5 if bc else 1.0,
        num_classes,
        in_channels,
        image_size,
        1.0 if bc else 0.5,
    )
