"""VGG for CIFAR-sized inputs (Liu et al.'s slimming code; Li et al.'s VGG-16-A), from a cfg list.

The cfg lists conv3x3-BN-ReLU widths with ``"M"`` for 2x2 max pooling. Liu's head is a global
average pool and one linear layer; ``hidden`` > 0 gives Li et al.'s VGG-16-A head instead:
Linear(cfg[-1], hidden)-BN1d-ReLU-Linear. Every conv's outputs are one prunable group, read by the
next conv or the first linear layer. A plain layer is never emptied: a method that would remove all
its channels must keep at least one (the rule and its use are recorded by the method), because an
empty layer disconnects the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, conv_group, stages_by
from prunestudy.io.options import Range

CFGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512),
    "vgg16-a": (32, 64, "M", 128, 128, "M", 256, 256, 256, "M", 256, 256, 256, "M", 256, 256, 256),
}
HIDDEN = {"vgg16-a": 512}


@dataclass(frozen=True)
class VGGSpec(ArchSpec):
    family: ClassVar[str] = "vgg"
    cfg: tuple[int | str, ...]
    hidden: int = 0
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    bn_gamma: float = 0.5

    def __post_init__(self) -> None:
        _check_cfg(self.cfg)
        cfg = tuple(c if c == "M" else int(c) for c in self.cfg)
        if not cfg or cfg[-1] == "M" or any(c != "M" and c < 1 for c in cfg):
            raise ValueError(f"VGG cfg must be positive widths and 'M', ending in a width; got {self.cfg}")
        if self.image_size >> cfg.count("M") < 1:
            raise ValueError(f"{cfg.count('M')} poolings do not fit a {self.image_size}-pixel input")
        object.__setattr__(self, "cfg", cfg)

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """VGG-16, VGG-19, ... (a cfg without a name is plain VGG), as references.yaml writes it."""
        name = options.get("name")
        return name.upper().replace("VGG", "VGG-") if name else "VGG"

    @property
    def convs(self) -> tuple[int, ...]:
        return tuple(c for c in self.cfg if c != "M")

    def _reader(self, j: int) -> str:
        if j + 1 < len(self.convs):
            return f"layers.{j + 1}.conv.weight"
        return "fc1.weight" if self.hidden else "fc.weight"

    def groups(self) -> tuple[Group, ...]:
        return tuple(
            conv_group(p, w, f"{p}.conv", f"{p}.bn", self._reader(j), tap=f"{p}.tap", emptiable=False)
            for j, w in enumerate(self.convs)
            for p in [f"layers.{j}"]
        )

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The convs between two poolings (each conv keyed by the poolings before it)."""
        pools, keys = 0, []
        for c in self.cfg:
            if c == "M":
                pools += 1
            else:
                keys.append(pools)
        return stages_by(keys)

    def with_widths(self, widths: Sequence[int]) -> VGGSpec:
        it = iter(widths)
        cfg = tuple(c if c == "M" else int(next(it)) for c in self.cfg)
        return VGGSpec(cfg, self.hidden, self.num_classes, self.in_channels, self.image_size, self.bn_gamma)

    def layers(self) -> tuple[Layer, ...]:
        out, size, cin = [], self.image_size, self.in_channels
        for c in self.cfg:
            if c == "M":
                size //= 2
                continue
            out += [Layer("conv", cin, c, 3, size), Layer("bn", c, c)]
            cin = c
        if self.hidden:
            h = self.hidden
            out += [Layer("linear", cin, h), Layer("bn", h, h), Layer("linear", h, self.num_classes)]
        else:
            out.append(Layer("linear", cin, self.num_classes))
        return tuple(out)


def vgg(
    name: str | None = None,
    *,
    cfg: Sequence[int | str] | None = None,
    hidden: Annotated[int, Range(min=0)] | None = None,
    width: Annotated[float, Range(gt=0)] = 1.0,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
) -> VGGSpec:
    """A named cfg (``vgg11/13/16/19``, ``vgg16-a``) or an explicit ``cfg``, every width times ``width``."""
    if (name is None) == (cfg is None):
        raise ValueError("give a VGG either a name or a cfg")
    if name is not None and name not in CFGS:
        raise ValueError(f"unknown VGG {name!r}; expected one of {sorted(CFGS)}")
    base = CFGS[name] if name is not None else _check_cfg(tuple(cfg))
    hidden = HIDDEN.get(name, 0) if hidden is None else hidden
    cfg = tuple(c if c == "M" else max(1, int(c * width)) for c in base)
    return VGGSpec(cfg, hidden, num_classes, in_channels, image_size)


def _check_cfg(cfg: tuple) -> tuple:
    """A cfg of whole numbers of channels and 'M' (a width of 16.5 is a typo, never 16)."""
    if any(c != "M" and (isinstance(c, bool) or not isinstance(c, int | float) or c != int(c)) for c in cfg):
        raise ValueError(f"a VGG cfg lists whole numbers of channels and 'M'; got {list(cfg)}")
    return cfg
