"""The one description of a network.

An :class:`ArchSpec` names a pre-activation WideResNet by its stage widths and one intermediate
("mid") width per block. That single vector of mids covers every network this study trains: the
dense WRN-d-k, the bottleneck-Z family, every Fisher-pruned checkpoint and every linearly scaled
member. Building, counting, scaling and hashing all go through the spec, so no other module
re-derives widths.

This module is torch-free on import so that config validation and the Snakefile stay fast; the
methods that need torch import it lazily.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


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
class ArchSpec:
    """A pre-activation WRN with per-block intermediate widths."""

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

    @property
    def prunable_channels(self) -> int:
        """Channels still available to prune: the sum of the mids."""
        return sum(self.mids)

    def with_mids(self, mids: tuple[int, ...] | list[int]) -> ArchSpec:
        return ArchSpec(self.depth, self.widths, tuple(mids), self.num_classes, self.in_channels, self.image_size)

    def scaled(self, factor: float) -> ArchSpec:
        """Every mid times ``factor``, rounded; an emptied block stays empty, a live one keeps >= 1."""
        return self.with_mids(tuple(0 if m == 0 else max(1, round(m * factor)) for m in self.mids))

    # --- identity and serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "family": "wrn",
            "depth": self.depth,
            "widths": list(self.widths),
            "mids": list(self.mids),
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ArchSpec:
        if d.get("family", "wrn") != "wrn":
            raise ValueError(f"unknown architecture family {d.get('family')!r}")
        return cls(
            int(d["depth"]),
            tuple(d["widths"]),
            tuple(d["mids"]),
            int(d["num_classes"]),
            int(d["in_channels"]),
            int(d["image_size"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        return cls.from_dict(json.loads(text))

    @property
    def spec_id(self) -> str:
        """Short, stable id: depth plus the first 10 hex digits of the canonical JSON's SHA-256."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:10]
        return f"wrn{self.depth}-{digest}"

    # --- torch-backed views --------------------------------------------------------------------
    def build(self):
        """A freshly initialised ``nn.Module`` on the CPU (seed torch first for a fixed init)."""
        from prunestudy.models import WideResNet

        return WideResNet(self)

    def param_count(self) -> int:
        """Learnable parameters of the built module (conv weights, BN affine, FC), no running stats."""
        return _counts(self)[0]

    def flops(self) -> int:
        """Forward FLOPs of one image as ``torch.utils.flop_counter`` counts them (multiply-add = 2 FLOPs)."""
        return _counts(self)[1]

    def macs(self) -> int:
        return self.flops() // 2


def wrn(
    depth: int,
    k: float,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    bottleneck: float = 1.0,
) -> ArchSpec:
    """WRN-d-k; ``bottleneck`` Z sets every mid to int(stage width x Z), block I/O unchanged."""
    widths = (16, int(16 * k), int(32 * k), int(64 * k))
    n = (depth - 4) // 6
    mids = tuple(int(widths[s] * bottleneck) for s in (1, 2, 3) for _ in range(n))
    return ArchSpec(depth, widths, mids, num_classes, in_channels, image_size)


def _counts(spec: ArchSpec) -> tuple[int, int]:
    """(learnable params, forward FLOPs of one image), FLOPs as ``torch.utils.flop_counter`` counts them:
    2 per multiply-add of every conv and linear layer, nothing for BN, ReLU, pooling or additions.

    Closed form, because counting by running the counter cost 1.5 s in every job (the first meta-device
    forward loads torch's meta kernels) and 12 ms at every prune step; the tests hold this arithmetic to
    the counter and to the built module's parameters, for dense, bottleneck, pruned and emptied specs.
    """
    size = spec.image_size
    params = 9 * spec.in_channels * spec.widths[0]
    macs = params * size * size
    for b in spec.blocks:
        size = (size - 1) // b.stride + 1  # 3x3 with padding 1, or 1x1 without: the same output size
        if b.projects or b.mid:
            params += 2 * b.in_ch  # bn1
        if b.projects:
            params += b.in_ch * b.out_ch
            macs += b.in_ch * b.out_ch * size * size
        if b.mid:
            params += 9 * b.mid * (b.in_ch + b.out_ch) + 2 * b.mid  # conv1, conv2, bn2
            macs += 9 * b.mid * (b.in_ch + b.out_ch) * size * size
    width = spec.widths[3]
    params += 2 * width + (width + 1) * spec.num_classes  # final BN, classifier
    macs += width * spec.num_classes
    return params, 2 * macs
