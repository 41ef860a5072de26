"""MobileNetV2 for CIFAR (Sandler et al. 2018), adapted as the common CIFAR ports do (kuangliu/pytorch-cifar).

Stem conv3x3 with stride 1 (not 2) to 32 channels, BN, ReLU6; the paper's inverted residual settings
(t, c, n, s) with the second stage's stride 2 -> 1, so that a 32-pixel input ends at 4x4; then conv1x1
to 1280, BN, ReLU6, global average pool and one linear layer (no dropout). A block is [1x1 expand
in -> hidden, BN, ReLU6] (absent when t == 1: its depthwise conv reads the block input), 3x3 depthwise
hidden -> hidden at the block's stride, BN, ReLU6, 1x1 project hidden -> out, BN (the linear bottleneck:
no ReLU). The shortcut is the identity and exists only when stride == 1 and in == out, as in the paper
and torchvision (kuangliu's port adds a 1x1 conv shortcut elsewhere and an expand conv to the t == 1
block: 60,240 more parameters at width 1).

``width`` scales every channel count and rounds it to a multiple of 8 (torchvision's
``_make_divisible``), except that the last conv's 1280 is never narrowed (the paper, section 6.1: a
multiplier below one applies to every layer but the last conv; torchvision's ``max(1.0, width)``).
The parameter count is that of torchvision's ``mobilenet_v2`` of the same width and classes: the CIFAR
strides change FLOPs, not weights.

Prunable: each block's hidden channels where it has an expand conv (t > 1). One group couples the
expand conv's rows, BN1, the depthwise conv's filters (channel c reads only channel c, so its one
filter goes with it), BN2 and the project conv's columns; BN2 is its scale (Network Slimming) and the
tap follows the depthwise ReLU6. The t == 1 block's hidden channels are the stem's outputs and are not
a group. A residual block emptied is the identity and keeps nothing, not even the projection BN (which
would add its shift beta, as an emptied ResNet branch's conv2 would); a block without a shortcut would
disconnect the network, so it keeps at least one channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, Slice, bn_slices, conv_out, stages_by
from prunestudy.io.options import Range

# (expansion t, output channels c, blocks n, first block's stride s); stage 2's s is 1 for CIFAR
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM, LAST = 32, 1280


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: the nearest multiple of ``divisor`` (at least ``divisor``),
    one step up when rounding down would lose more than 10%."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


@dataclass(frozen=True)
class InvertedBlock:
    """One inverted residual block: ``in_ch -> hidden -> out_ch``; ``hidden`` is prunable if it ``expands``."""

    index: int
    in_ch: int
    hidden: int
    out_ch: int
    stride: int
    expands: bool

    @property
    def residual(self) -> bool:
        """True when the block adds its input (the paper: stride 1 and as many outputs as inputs)."""
        return self.stride == 1 and self.in_ch == self.out_ch


@dataclass(frozen=True)
class MobileNetV2Spec(ArchSpec):
    """Per-block output channels, strides, hidden widths and whether the block has an expand conv."""

    family: ClassVar[str] = "mobilenetv2"
    stem: int
    outs: tuple[int, ...]
    strides: tuple[int, ...]
    hiddens: tuple[int, ...]
    expands: tuple[bool, ...]
    last: int = LAST
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32

    def __post_init__(self) -> None:
        n = len(self.outs)
        if not n or {len(self.strides), len(self.hiddens), len(self.expands)} != {n}:
            raise ValueError("outs, strides, hiddens and expands must be non-empty and of one length")
        if min(self.stem, self.last, *self.outs) < 1 or not set(self.strides) <= {1, 2}:
            raise ValueError(f"channels must be positive and strides 1 or 2; got {self.to_dict()}")
        for name in ("outs", "strides", "hiddens"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "expands", tuple(bool(e) for e in self.expands))
        for b in self.blocks():
            if not b.expands and b.hidden != b.in_ch:
                raise ValueError(f"block {b.index} has no expand conv: its hidden width is its input's, {b.in_ch}")
            if b.hidden < (0 if b.residual else 1):
                raise ValueError(f"block {b.index} has no shortcut: its hidden width must be positive, got {b.hidden}")

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """MobileNetV2, or MobileNetV2-<width> for a width multiplier other than 1."""
        width = options.get("width", 1.0)
        return "MobileNetV2" if width == 1 else f"MobileNetV2-{width:g}"

    def blocks(self) -> tuple[InvertedBlock, ...]:
        ins = (self.stem, *self.outs[:-1])
        rows = zip(ins, self.hiddens, self.outs, self.strides, self.expands, strict=True)
        return tuple(InvertedBlock(i, *row) for i, row in enumerate(rows))

    def groups(self) -> tuple[Group, ...]:
        return tuple(_hidden_group(b) for b in self.blocks() if b.expands)

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The expanding blocks by output size: the depthwise conv, which subsamples, and the projection
        run at it (a strided block's expand conv still reads the larger input)."""
        sizes, size = [], self.image_size
        for b in self.blocks():
            size = conv_out(size, b.stride)
            if b.expands:
                sizes.append(size)
        return stages_by(sizes)

    def with_widths(self, widths: Sequence[int]) -> MobileNetV2Spec:
        it = iter(widths)
        hiddens = tuple(int(next(it)) if b.expands else b.hidden for b in self.blocks())
        if next(it, None) is not None:
            raise ValueError(f"more widths than the {len(self.groups())} groups of {self.spec_id}")
        return replace(self, hiddens=hiddens)

    def layers(self) -> tuple[Layer, ...]:
        size = self.image_size
        out = [Layer("conv", self.in_channels, self.stem, 3, size), Layer("bn", self.stem, self.stem)]
        for b in self.blocks():
            in_size, size = size, conv_out(size, b.stride)
            out += _block_layers(b, in_size, size)
        w = self.outs[-1]
        out += [Layer("conv", w, self.last, 1, size), Layer("bn", self.last, self.last)]
        return (*out, Layer("linear", self.last, self.num_classes))


def _hidden_group(b: InvertedBlock) -> Group:
    """Expand rows, BN1, depthwise filters, BN2 and project columns: removed together."""
    p = f"blocks.{b.index}"
    slices = (
        Slice(f"{p}.expand.weight", 0),
        *bn_slices(f"{p}.bn1"),
        Slice(f"{p}.dw.weight", 0),
        *bn_slices(f"{p}.bn2"),
        Slice(f"{p}.project.weight", 1),
    )
    return Group(p, b.hidden, slices, tap=f"{p}.tap", emptiable=b.residual, scale=f"{p}.bn2.weight")


def _block_layers(b: InvertedBlock, in_size: int, size: int) -> list[Layer]:
    """The expand conv runs at the input's size; the depthwise conv subsamples; nothing if emptied."""
    h = b.hidden
    if not h:
        return []
    out = [Layer("conv", b.in_ch, h, 1, in_size), Layer("bn", h, h)] if b.expands else []
    out += [Layer("conv", h, h, 3, size, groups=h), Layer("bn", h, h)]
    return [*out, Layer("conv", h, b.out_ch, 1, size), Layer("bn", b.out_ch, b.out_ch)]


def mobilenetv2(
    *, width: Annotated[float, Range(gt=0)] = 1.0, num_classes: int = 10, in_channels: int = 3, image_size: int = 32
) -> MobileNetV2Spec:
    """The CIFAR MobileNetV2 at width multiplier ``width``; hidden = round(in x t), as torchvision."""
    stem = cin = make_divisible(STEM * width)
    outs, strides, hiddens, expands = [], [], [], []
    for t, c, n, s in SETTINGS:
        cout = make_divisible(c * width)
        for i in range(n):
            outs.append(cout)
            strides.append(s if i == 0 else 1)
            hiddens.append(round(cin * t))
            expands.append(t != 1)
            cin = cout
    last = make_divisible(LAST * max(1.0, width))
    return MobileNetV2Spec(
        stem, tuple(outs), tuple(strides), tuple(hiddens), tuple(expands), last, num_classes, in_channels, image_size
    )
