"""ImageNet VGGs: torchvision's vgg11_bn / vgg16_bn and the pruned VGG-16s of Liu et al.'s ImageNet tables.

The features are a cfg of conv3x3 widths and ``"M"`` (2x2 max pool), each conv followed by BN (unless
``batch_norm`` is off: torchvision's plain ``vgg16``) and ReLU. Every conv has a bias, BN or not, as in
torchvision and Liu's code (vgg11_bn has 2,752 parameters more than a bias-free count). The ``head`` is
``"fc"``, torchvision's: average pool to 7x7 (``AdaptiveAvgPool2d``; it counts no FLOPs), flatten, the
``hidden`` linear layers (4096, 4096), each ReLU then Dropout, and the classifier; or ``"gap"``,
ThiNet's: a global average pool and the classifier (hidden layers allowed, absent by default).
``classifier_bn`` puts a BN1d after each hidden linear layer, before its ReLU, as Liu's Network
Slimming VGG-11 does (its code also has no dropout: ``dropout`` defaults to 0 there).

Named cfgs (Liu's code, ``imagenet/thinet`` and ``imagenet/regression-pruning``): ``vgg11``, ``vgg16``,
ThiNet's ``thinet-conv`` (fc head), ``thinet-gap`` and ``thinet-tiny`` (no pool5, gap head), and He et
al.'s ``vgg16-5x`` (fc head). Liu's code builds the ThiNet and 5x networks without BN, so those names
default ``batch_norm`` to off; the option overrides it.

Prunable: every conv's outputs (plain layers: never emptied), read by the next conv or by the first
linear layer, and every hidden linear layer's outputs (read by the next; their BN1d is the Network
Slimming scale). Behind the fc head the first linear layer reads 49 columns per channel: its weight
is stored as [out, channels, 49] (one forward reshape, a view), so a conv group's channel slices it on
dimension 1 as any consumer, and surgery needs nothing new. Loading torchvision's [out, channels x 49]
weight is a reshape (:func:`prunestudy.arch.nets.imagenet_vgg.load_torchvision`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar

from prunestudy.arch.base import ArchSpec, Group, Layer, Slice, bn_slices, stages_by
from prunestudy.io.options import Range

POOL = 7  # the fc head's pooled side: torchvision's AdaptiveAvgPool2d((7, 7))
HIDDEN = (4096, 4096)
HEADS = ("fc", "gap")


@dataclass(frozen=True)
class Named:
    """A named cfg with its head and BN defaults, and the name Liu's tables print for its base network."""

    cfg: tuple[int | str, ...]
    head: str = "fc"
    batch_norm: bool = True
    paper: str = "VGG-16"


_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
NAMED: dict[str, Named] = {
    "vgg11": Named(_A, paper="VGG-11"),
    "vgg16": Named(_D),
    "thinet-conv": Named((32, 32, "M", 64, 64, "M", 128, 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M"),
                         batch_norm=False),
    "thinet-gap": Named((32, 32, "M", 64, 64, "M", 128, 128, 128, "M", 256, 256, 256, "M", 512, 512, 512),
                        "gap", False),
    "thinet-tiny": Named((16, 16, "M", 32, 32, "M", 64, 64, 64, "M", 128, 128, 128, "M", 128, 128, 256),
                         "gap", False),
    "vgg16-5x": Named((24, 22, "M", 41, 51, "M", 108, 89, 111, "M", 184, 276, 228, "M", 512, 512, 512, "M"),
                      batch_norm=False),
}  # fmt: skip


@dataclass(frozen=True)
class ImageNetVGGSpec(ArchSpec):
    family: ClassVar[str] = "imagenet_vgg"
    cfg: tuple[int | str, ...]
    head: str = "fc"
    hidden: tuple[int, ...] = HIDDEN
    batch_norm: bool = True
    classifier_bn: bool = False
    dropout: float = 0.5
    bn_gamma: float = 1.0
    num_classes: int = 1000
    in_channels: int = 3
    image_size: int = 224

    def __post_init__(self) -> None:
        _check_cfg(self.cfg)
        cfg = tuple(c if c == "M" else int(c) for c in self.cfg)
        object.__setattr__(self, "cfg", cfg)
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if not any(c != "M" for c in cfg) or any(c != "M" and c < 1 for c in cfg) or min(self.hidden, default=1) < 1:
            raise ValueError(f"VGG widths must be positive, with at least one conv; got {cfg} and {self.hidden}")
        if self.head not in HEADS:
            raise ValueError(f"VGG head must be one of {HEADS}, got {self.head!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.image_size >> cfg.count("M") < 1:
            raise ValueError(f"{cfg.count('M')} poolings do not fit a {self.image_size}-pixel input")

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """VGG-11 or VGG-16, as Liu's tables print it: a pruned VGG-16 (ThiNet, 5x) keeps its base's name."""
        name = options.get("name")
        return NAMED[name].paper if name in NAMED else "VGG"

    @property
    def convs(self) -> tuple[int, ...]:
        return tuple(c for c in self.cfg if c != "M")

    @property
    def features(self) -> int:
        """What the first linear layer reads: channels x 7 x 7 (fc head) or channels (gap head)."""
        return self.convs[-1] * (POOL * POOL if self.head == "fc" else 1)

    def _linear_names(self) -> list[str]:
        """Every linear layer's module, hidden ones first."""
        return [*(f"hidden.{k}.fc" for k in range(len(self.hidden))), "fc"]

    def groups(self) -> tuple[Group, ...]:
        convs = [
            _conv_group(f"layers.{j}", w, self.batch_norm, f"layers.{j + 1}.conv")
            for j, w in enumerate(self.convs[:-1])
        ]
        last = len(self.convs) - 1
        convs.append(_conv_group(f"layers.{last}", self.convs[-1], self.batch_norm, self._linear_names()[0]))
        fcs = [
            _fc_group(f"hidden.{k}", h, self.classifier_bn, self._linear_names()[k + 1])
            for k, h in enumerate(self.hidden)
        ]
        return (*convs, *fcs)

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The convs between two poolings, then the hidden linear layers."""
        pools, keys = 0, []
        for c in self.cfg:
            pools += c == "M"
            if c != "M":
                keys.append(pools)
        return stages_by([*keys, *(["fc"] * len(self.hidden))])

    def with_widths(self, widths: Sequence[int]) -> ImageNetVGGSpec:
        it = iter(widths)
        cfg = tuple(c if c == "M" else int(next(it)) for c in self.cfg)
        hidden = tuple(int(next(it)) for _ in self.hidden)
        if next(it, None) is not None:
            raise ValueError(f"more widths than the {len(self.groups())} groups of {self.spec_id}")
        return replace(self, cfg=cfg, hidden=hidden)

    def layers(self) -> tuple[Layer, ...]:
        out, size, cin = [], self.image_size, self.in_channels
        for c in self.cfg:
            if c == "M":
                size //= 2
                continue
            out += [Layer("conv", cin, c, 3, size), Layer("scale", c, c)]  # the bias: c numbers, no FLOPs counted
            out += [Layer("bn", c, c)] if self.batch_norm else []
            cin = c
        features = self.features
        for h in self.hidden:
            out.append(Layer("linear", features, h))
            out += [Layer("bn", h, h)] if self.classifier_bn else []
            features = h
        return (*out, Layer("linear", features, self.num_classes))

    @property
    def id_prefix(self) -> str:
        return f"imagenet-vgg{len(self.convs) + len(self.hidden) + 1}"


def _conv_group(p: str, width: int, batch_norm: bool, consumer: str) -> Group:
    """Conv rows and bias, its BN, and the consumer's input columns (a conv's, or a linear layer's)."""
    after = bn_slices(f"{p}.bn") if batch_norm else ()
    slices = (Slice(f"{p}.conv.weight", 0), Slice(f"{p}.conv.bias", 0), *after, Slice(f"{consumer}.weight", 1))
    return Group(p, width, slices, f"{p}.tap", False, f"{p}.bn.weight" if batch_norm else None)


def _fc_group(p: str, width: int, bn: bool, consumer: str) -> Group:
    """A hidden linear layer's outputs. No tap: activation saliency here reads conv feature maps."""
    after = bn_slices(f"{p}.bn") if bn else ()
    slices = (Slice(f"{p}.fc.weight", 0), Slice(f"{p}.fc.bias", 0), *after, Slice(f"{consumer}.weight", 1))
    return Group(p, width, slices, None, False, f"{p}.bn.weight" if bn else None)


def _check_cfg(cfg: tuple) -> tuple:
    """A cfg of whole numbers of channels and 'M' (a width of 16.5 is a typo, never 16)."""
    if any(c != "M" and (isinstance(c, bool) or not isinstance(c, int | float) or c != int(c)) for c in cfg):
        raise ValueError(f"a VGG cfg lists whole numbers of channels and 'M'; got {list(cfg)}")
    return cfg


def imagenet_vgg(
    name: str | None = None,
    *,
    cfg: Sequence[int | str] | None = None,
    head: str | None = None,
    hidden: Sequence[int] | None = None,
    batch_norm: bool | None = None,
    classifier_bn: bool = False,
    dropout: float | None = None,
    bn_gamma: Annotated[float, Range(gt=0)] = 1.0,
    width: Annotated[float, Range(gt=0)] = 1.0,
    num_classes: int = 1000,
    in_channels: int = 3,
    image_size: int = 224,
) -> ImageNetVGGSpec:
    """A named cfg (:data:`NAMED`) or an explicit ``cfg``; ``width`` scales every conv and hidden width.

    Defaults: the name's head and BN (else fc and on); hidden (4096, 4096) behind an fc head, none
    behind gap; dropout 0.5, or 0 with ``classifier_bn`` (Liu's Network Slimming VGG-11 has none).
    Liu's slimming network: ``name: vgg11, classifier_bn: true, bn_gamma: 0.5``.
    """
    if (name is None) == (cfg is None):
        raise ValueError("give an ImageNet VGG either a name or a cfg")
    if name is not None and name not in NAMED:
        raise ValueError(f"unknown ImageNet VGG {name!r}; expected one of {sorted(NAMED)}")
    named = NAMED[name] if name is not None else Named(_check_cfg(tuple(cfg)))
    head = named.head if head is None else head
    hidden = (HIDDEN if head == "fc" else ()) if hidden is None else tuple(hidden)
    dropout = (0.0 if classifier_bn else 0.5) if dropout is None else dropout
    return ImageNetVGGSpec(
        tuple(c if c == "M" else max(1, round(c * width)) for c in named.cfg),
        head,
        tuple(max(1, round(h * width)) for h in hidden),
        named.batch_norm if batch_norm is None else batch_norm,
        classifier_bn,
        dropout,
        bn_gamma,
        num_classes,
        in_channels,
        image_size,
    )
