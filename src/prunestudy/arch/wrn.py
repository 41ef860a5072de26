"""Pre-activation WideResNets (Zagoruyko & Komodakis; Crowley et al.'s code) by stage widths and mids.

One vector of per-block intermediate ("mid") widths covers every WRN this study trains: the dense
WRN-d-k, the bottleneck-Z family, every Fisher-pruned checkpoint and every linearly scaled member.
Only the mids are prunable: conv1 output rows, BN2, conv2 input columns. A block whose mid is 0 has
no residual branch and is exactly its shortcut; an identity block with mid 0 is the identity and
keeps no BN (the reference's parameter count keeps that dead bn1: 2 x in_ch parameters).

A strided projection subsamples first and then applies a stride-1 1x1 conv: the same function and
the same parameters and FLOPs as a strided 1x1 conv, but it never reaches oneDNN's strided 1x1
backward-weights kernel, which on AVX2 CPUs with channels_last input and fewer than 8 input channels
returns wrong weight gradients and writes past its workspace (uxlfoundation/oneDNN#6035).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, conv_group, conv_out, stages_by
from prunestudy.io.options import Range


@dataclass(frozen=True)
class BlockSpec:
    """One residual block: ``in_ch -> mid -> out_ch``; only ``mid`` is prunable."""

    index: int
    stage: int
    in_ch: int
    mid: int
    out_ch: int
    stride: int

    @property
    def projects(self) -> bool:
        """True when the shortcut is a 1x1 projection rather than the identity."""
        return self.in_ch != self.out_ch or self.stride != 1


@dataclass(frozen=True)
class WRNSpec(ArchSpec):
    """A pre-activation WRN with per-block intermediate widths."""

    family: ClassVar[str] = "wrn"
    depth: int
    widths: tuple[int, int, int, int]
    mids: tuple[int, ...]
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32

    def __post_init__(self) -> None:
        if self.depth < 10 or (self.depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4 with n >= 1, got {self.depth}")
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ValueError(f"widths must be four positive ints, got {self.widths}")
        if len(self.mids) != 3 * self.blocks_per_stage:
            raise ValueError(f"expected {3 * self.blocks_per_stage} mids for depth {self.depth}, got {len(self.mids)}")
        if min(self.mids) < 0:
            raise ValueError(f"mids must be non-negative, got {self.mids}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "mids", tuple(int(m) for m in self.mids))

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """WRN-d-k, as Crowley et al. and references.yaml write it."""
        return f"WRN-{options['depth']}-{options['width']:g}"

    @property
    def blocks_per_stage(self) -> int:
        return (self.depth - 4) // 6

    @property
    def blocks(self) -> tuple[BlockSpec, ...]:
        out, n = [], self.blocks_per_stage
        for i, mid in enumerate(self.mids):
            stage = i // n + 1
            first = i % n == 0
            in_ch = self.widths[stage - 1] if first else self.widths[stage]
            stride = 2 if first and stage > 1 else 1
            out.append(BlockSpec(i, stage, in_ch, mid, self.widths[stage], stride))
        return tuple(out)

    def groups(self) -> tuple[Group, ...]:
        return tuple(
            conv_group(p, b.mid, f"{p}.conv1", f"{p}.bn2", f"{p}.conv2.weight", tap=f"{p}.tap")
            for b in self.blocks
            for p in [f"blocks.{b.index}"]
        )

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The blocks of one stage (a stage's first block subsamples, so all its mids run at one size)."""
        return stages_by([b.stage for b in self.blocks])

    def with_widths(self, widths: Sequence[int]) -> WRNSpec:
        return WRNSpec(self.depth, self.widths, tuple(widths), self.num_classes, self.in_channels, self.image_size)

    def layers(self) -> tuple[Layer, ...]:
        size = self.image_size
        out = [Layer("conv", self.in_channels, self.widths[0], 3, size)]
        for b in self.blocks:
            size = conv_out(size, b.stride)
            if b.projects or b.mid:
                out.append(Layer("bn", b.in_ch, b.in_ch))
            if b.projects:
                out.append(Layer("conv", b.in_ch, b.out_ch, 1, size))
            if b.mid:
                out += [
                    Layer("conv", b.in_ch, b.mid, 3, size),
                    Layer("bn", b.mid, b.mid),
                    Layer("conv", b.mid, b.out_ch, 3, size),
                ]
        w = self.widths[3]
        return (*out, Layer("bn", w, w), Layer("linear", w, self.num_classes))

    @property
    def id_prefix(self) -> str:
        return f"wrn{self.depth}"


def wrn(
    depth: Annotated[int, Range(min=10)],
    width: Annotated[float, Range(min=1 / 16)],
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    bottleneck: Annotated[float, Range(gt=0, max=1)] = 1.0,
) -> WRNSpec:
    """WRN-d-k with k = ``width``; ``bottleneck`` Z sets every mid to int(stage width x Z), block I/O unchanged."""
    widths = (16, int(16 * width), int(32 * width), int(64 * width))
    n = (depth - 4) // 6
    mids = tuple(int(widths[s] * bottleneck) for s in (1, 2, 3) for _ in range(n))
    return WRNSpec(depth, widths, mids, num_classes, in_channels, image_size)
