"""Params and FLOPs from a spec's layer table: closed form, torch-free, the same for every family.

FLOPs are counted as ``torch.utils.flop_counter`` counts them: 2 per multiply-add of every conv and
linear layer, nothing for BN, ReLU, pooling, additions or concatenation. Params are the learnable
ones: conv weights (no bias), BN scale and shift, linear weights and biases; running statistics and
channel-selection indices are not parameters. Counting by running the counter cost 1.5 s per job (the
first meta-device forward loads torch's meta kernels), so the tests hold this arithmetic to the
counter, to the built modules and to ptflops/fvcore instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One counted layer: ``conv`` (no bias), ``linear`` (with bias), ``bn`` (affine, 2 params per channel)
    or ``scale`` (one learnable factor per channel).

    ``size`` is the conv's output side in pixels; a linear or BN layer has size 1. ``groups`` splits a
    conv into that many convs of cin/groups -> cout/groups channels (a depthwise conv has groups = cin),
    so each output reads cin/groups inputs: the weight tensor torch allocates, [cout, cin/groups, k, k].
    """

    kind: str
    cin: int
    cout: int
    kernel: int = 1
    size: int = 1
    groups: int = 1

    def __post_init__(self) -> None:
        if self.groups < 1 or self.cin % self.groups or self.cout % self.groups:
            raise ValueError(f"{self.groups} groups do not divide a {self.cin} -> {self.cout} conv")


def count(layers: Iterable[Layer]) -> tuple[int, int]:
    """(learnable params, forward FLOPs of one image)."""
    params = macs = 0
    for layer in layers:
        if layer.kind == "conv":
            weights = layer.cin // layer.groups * layer.cout * layer.kernel * layer.kernel
            params += weights
            macs += weights * layer.size * layer.size
        elif layer.kind == "linear":
            params += (layer.cin + 1) * layer.cout
            macs += layer.cin * layer.cout
        elif layer.kind == "bn":
            params += 2 * layer.cout
        elif layer.kind == "scale":  # a learnable scalar per channel, applied elementwise (no FLOPs counted)
            params += layer.cout
        else:
            raise ValueError(f"unknown layer kind {layer.kind!r}")
    return params, 2 * macs
