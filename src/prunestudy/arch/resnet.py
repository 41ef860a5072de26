"""CIFAR ResNets: Li et al.'s ResNet-20/56/110 (option-A shortcuts) and Liu et al.'s PreResNets.

**ResNet** (post-activation, basic blocks): conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.
A block that changes shape subsamples and appends zero channels (option A: no parameters). Li et
al. prune each block's first conv, so the block's ``mid`` is its one group. An emptied branch is
dropped: the block becomes ReLU(shortcut(x)) (conv2 of nothing would add BN2's constant shift).

**PreResNet** (Liu et al.): BN-Select-ReLU-conv ... with ``bottleneck`` blocks
(1x1 sel->c1, 3x3 c1->c2, 1x1 c2->4*planes; PreResNet-164) or basic ones (3x3 sel->mid, 3x3
mid->planes; PreResNet-110). A block that changes shape projects its raw input with a 1x1 conv (as
subsample then 1x1: the oneDNN#6035 workaround of :mod:`prunestudy.arch.wrn`). The channel selection
after BN1 names the block-input channels conv1 reads (its group's slices are conv1's inputs; BN1
keeps every channel, as in Liu's code); the final BN is followed by a selection too, read by the
classifier. A block any of whose groups is emptied has no branch and is its shortcut; the head's
selection is never emptied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, conv_group, conv_out, select_group, stages_by
from prunestudy.io.options import Range


def _stage_blocks(n: int) -> list[tuple[int, int]]:
    """(stage, stride) of every block of a three-stage CIFAR ResNet with n blocks per stage."""
    return [(s, 2 if i == 0 and s > 0 else 1) for s in range(3) for i in range(n)]


@dataclass(frozen=True)
class ResNetSpec(ArchSpec):
    """``gates``: a learnable scale per live residual branch, out = ReLU(shortcut + gate x branch)
    (Sparse Structure Selection's block factors)."""

    family: ClassVar[str] = "resnet"
    depth: int
    mids: tuple[int, ...]
    widths: tuple[int, int, int] = (16, 32, 64)
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    bn_gamma: float = 0.5
    gates: bool = False

    def __post_init__(self) -> None:
        if self.depth < 8 or (self.depth - 2) % 6:
            raise ValueError(f"ResNet depth must be 6n+2 with n >= 1, got {self.depth}")
        if len(self.mids) != 3 * self.n or min(self.mids) < 0:
            raise ValueError(f"expected {3 * self.n} non-negative mids for depth {self.depth}, got {self.mids}")
        object.__setattr__(self, "mids", tuple(int(m) for m in self.mids))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """ResNet-<depth> (Li et al.'s CIFAR ResNets), as references.yaml writes it."""
        return f"ResNet-{options['depth']}"

    @property
    def n(self) -> int:
        return (self.depth - 2) // 6

    def blocks(self) -> list[tuple[int, int, int, int]]:
        """(in_ch, mid, out_ch, stride) per block."""
        out, cin = [], self.widths[0]
        for (s, stride), mid in zip(_stage_blocks(self.n), self.mids, strict=True):
            out.append((cin, mid, self.widths[s], stride))
            cin = self.widths[s]
        return out

    def groups(self) -> tuple[Group, ...]:
        return tuple(
            conv_group(
                f"blocks.{i}", m, f"blocks.{i}.conv1", f"blocks.{i}.bn1", f"blocks.{i}.conv2.weight", f"blocks.{i}.tap"
            )
            for i, m in enumerate(self.mids)
        )

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The blocks of one stage (its first block's conv1 subsamples: every mid runs at one size)."""
        return stages_by([s for s, _ in _stage_blocks(self.n)])

    def with_widths(self, widths: Sequence[int]) -> ResNetSpec:
        return replace(self, mids=tuple(widths))

    def layers(self) -> tuple[Layer, ...]:
        size, w0 = self.image_size, self.widths[0]
        out = [Layer("conv", self.in_channels, w0, 3, size), Layer("bn", w0, w0)]
        for cin, mid, cout, stride in self.blocks():
            size = conv_out(size, stride)
            if mid:
                out += [Layer("conv", cin, mid, 3, size), Layer("bn", mid, mid), Layer("conv", mid, cout, 3, size)]
                out.append(Layer("bn", cout, cout))
                if self.gates:
                    out.append(Layer("scale", 1, 1))
        return (*out, Layer("linear", self.widths[2], self.num_classes))

    @property
    def id_prefix(self) -> str:
        return f"resnet{self.depth}"


def resnet(
    depth: Annotated[int, Range(min=8)],
    *,
    width: Annotated[float, Range(min=1 / 16)] = 1.0,  # every stage keeps at least one channel
    gates: bool = False,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
) -> ResNetSpec:
    """A CIFAR ResNet of stage widths 16, 32, 64 x ``width``; ``gates`` adds SSS's block factors."""
    widths = tuple(int(w * width) for w in (16, 32, 64))
    n = (depth - 2) // 6
    mids = tuple(widths[s] for s, _ in _stage_blocks(n))
    return ResNetSpec(depth, mids, widths, num_classes, in_channels, image_size, gates=gates)


@dataclass(frozen=True)
class PreBlock:
    in_ch: int
    select: tuple[int, ...]
    mids: tuple[int, ...]  # (c1, c2) for a bottleneck, (mid,) for a basic block
    out_ch: int
    stride: int

    @property
    def live(self) -> bool:
        return bool(self.select) and min(self.mids) > 0

    @property
    def projects(self) -> bool:
        return self.in_ch != self.out_ch or self.stride != 1


@dataclass(frozen=True)
class PreResNetSpec(ArchSpec):
    """``selects`` has one entry per block plus one for the head; None selects every channel."""

    family: ClassVar[str] = "preresnet"
    depth: int
    bottleneck: bool
    mids: tuple[int, ...]
    selects: tuple[tuple[int, ...] | None, ...]
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    bn_gamma: float = 0.5

    def __post_init__(self) -> None:
        per = 9 if self.bottleneck else 6
        if self.depth < per + 2 or (self.depth - 2) % per:
            raise ValueError(
                f"PreResNet depth must be {per}n+2 for {'bottleneck' if self.bottleneck else 'basic'} blocks"
            )
        nb = 3 * self.n
        if len(self.mids) != nb * self.per_block or min(self.mids) < 0:
            raise ValueError(f"expected {nb * self.per_block} non-negative mids, got {len(self.mids)}")
        if len(self.selects) != nb + 1:
            raise ValueError(f"expected {nb + 1} selections (one per block and the head), got {len(self.selects)}")
        selects = tuple(None if s is None else tuple(int(i) for i in s) for s in self.selects)
        object.__setattr__(self, "selects", selects)
        object.__setattr__(self, "mids", tuple(int(m) for m in self.mids))
        for s, width in zip(selects, self._read_widths(), strict=True):
            if s is not None and (len(set(s)) != len(s) or any(not 0 <= i < width for i in s)):
                raise ValueError(f"a selection must list distinct channels below {width}, got {s}")
        if self.selects[-1] == ():
            raise ValueError("the head's selection cannot be empty")

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """PreResNet-<depth>, as references.yaml writes it."""
        return f"PreResNet-{options['depth']}"

    @property
    def n(self) -> int:
        return (self.depth - 2) // (9 if self.bottleneck else 6)

    @property
    def per_block(self) -> int:
        return 2 if self.bottleneck else 1

    @property
    def expansion(self) -> int:
        return 4 if self.bottleneck else 1

    def _read_widths(self) -> list[int]:
        """The width each selection chooses from: every block's input, then the final width."""
        outs = [16 * 2**s * self.expansion for s, _ in _stage_blocks(self.n)]
        return [16, *outs[:-1], outs[-1]]

    def blocks(self) -> list[PreBlock]:
        ins, k = self._read_widths(), self.per_block
        out = []
        for i, (_, stride) in enumerate(_stage_blocks(self.n)):
            sel = self.selects[i]
            sel = tuple(range(ins[i])) if sel is None else sel
            out.append(PreBlock(ins[i], sel, self.mids[k * i : k * i + k], ins[i + 1], stride))
        return out

    @property
    def head_select(self) -> tuple[int, ...]:
        width = self._read_widths()[-1]
        return tuple(range(width)) if self.selects[-1] is None else self.selects[-1]

    def groups(self) -> tuple[Group, ...]:
        out = []
        for i, b in enumerate(self.blocks()):
            p = f"blocks.{i}"
            out.append(select_group(f"{p}.select", b.select, f"{p}.bn1", f"{p}.conv1.weight"))
            out += [
                conv_group(
                    f"{p}.c{j}",
                    b.mids[j - 1],
                    f"{p}.conv{j}",
                    f"{p}.bn{j + 1}",
                    f"{p}.conv{j + 1}.weight",
                    f"{p}.tap{j}",
                )
                for j in range(1, self.per_block + 1)
            ]
        out.append(select_group("head.select", self.head_select, "head.bn", "head.fc.weight", emptiable=False))
        return tuple(out)

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The groups of one stage's blocks (selection and mids), as Liu's cfg lists them; the head's
        selection, read by the classifier, is a stage of its own at the final size."""
        keys = [s for s, _ in _stage_blocks(self.n) for _ in range(1 + self.per_block)]
        return stages_by([*keys, "head"])

    def kept(self, keep: Mapping[str, Sequence[int]]) -> PreResNetSpec:
        spec = ArchSpec.kept(self, keep)
        selects = list(self.selects)
        for i, b in enumerate([*self.blocks(), None]):
            name = "head.select" if b is None else f"blocks.{i}.select"
            if name in keep:
                current = self.head_select if b is None else b.select
                selects[i] = tuple(current[p] for p in keep[name])
        return PreResNetSpec(
            self.depth,
            self.bottleneck,
            spec.mids,
            tuple(selects),
            self.num_classes,
            self.in_channels,
            self.image_size,
            self.bn_gamma,
        )

    def with_widths(self, widths: Sequence[int]) -> PreResNetSpec:
        """Selections of a new width keep their first channels, or add the lowest unselected ones."""
        it, mids, selects = iter(widths), [], []
        reads = self._read_widths()
        for i, b in enumerate([*self.blocks(), None]):
            current = self.head_select if b is None else b.select
            selects.append(_resize(current, next(it), reads[i]))
            if b is not None:
                mids += [next(it) for _ in range(self.per_block)]
        selects = [None if s == tuple(range(w)) else s for s, w in zip(selects, reads, strict=True)]
        return PreResNetSpec(
            self.depth,
            self.bottleneck,
            tuple(mids),
            tuple(selects),
            self.num_classes,
            self.in_channels,
            self.image_size,
            self.bn_gamma,
        )

    def layers(self) -> tuple[Layer, ...]:
        size = self.image_size
        out = [Layer("conv", self.in_channels, 16, 3, size)]
        for b in self.blocks():
            in_size, size = size, conv_out(size, b.stride)
            if b.projects:
                out.append(Layer("conv", b.in_ch, b.out_ch, 1, size))
            if not b.live:
                continue
            out.append(Layer("bn", b.in_ch, b.in_ch))
            if self.bottleneck:
                c1, c2 = b.mids
                out += [Layer("conv", len(b.select), c1, 1, in_size), Layer("bn", c1, c1)]
                out += [Layer("conv", c1, c2, 3, size), Layer("bn", c2, c2), Layer("conv", c2, b.out_ch, 1, size)]
            else:
                (m,) = b.mids
                out += [
                    Layer("conv", len(b.select), m, 3, size),
                    Layer("bn", m, m),
                    Layer("conv", m, b.out_ch, 3, size),
                ]
        w = self._read_widths()[-1]
        return (*out, Layer("bn", w, w), Layer("linear", len(self.head_select), self.num_classes))

    @property
    def id_prefix(self) -> str:
        return f"preresnet{self.depth}"


def _resize(select: tuple[int, ...], width: int, available: int) -> tuple[int, ...]:
    if width <= len(select):
        return select[:width]
    extra = [i for i in range(available) if i not in set(select)]
    return select + tuple(extra[: width - len(select)])


def preresnet(
    depth: Annotated[int, Range(min=8)],
    bottleneck: bool,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
) -> PreResNetSpec:
    """PreResNet-164 (bottleneck blocks, depth 9n+2) or PreResNet-110 (basic blocks, depth 6n+2)."""
    per = 9 if bottleneck else 6
    n = (depth - 2) // per
    mids = tuple(16 * 2**s for s, _ in _stage_blocks(n) for _ in range(2 if bottleneck else 1))
    return PreResNetSpec(depth, bottleneck, mids, (None,) * (3 * n + 1), num_classes, in_channels, image_size)
