"""Architecture families: one spec module each (torch-free), its ``nn.Module`` in ``nets/``, and this registry.

A new family is a spec module and its ``nn.Module`` in ``nets/``, registered by one line in
:data:`FAMILIES`: the spec class, the builder from the config's model options, and where the module
class lives (imported only when a network is built, so that the specs stay torch-free).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any, NamedTuple

from prunestudy.arch.base import ArchSpec, Group, Layer, Slice
from prunestudy.arch.densenet import DenseNetSpec, densenet
from prunestudy.arch.imagenet_resnet import ImageNetResNetSpec, imagenet_resnet
from prunestudy.arch.imagenet_vgg import ImageNetVGGSpec, imagenet_vgg
from prunestudy.arch.mobilenetv2 import MobileNetV2Spec, mobilenetv2
from prunestudy.arch.resnet import PreResNetSpec, ResNetSpec, preresnet, resnet
from prunestudy.arch.vgg import VGGSpec, vgg
from prunestudy.arch.wrn import WRNSpec, wrn
from prunestudy.io.options import check_call


class Family(NamedTuple):
    spec: type[ArchSpec]
    builder: Callable[..., ArchSpec]  # the config's model options (less ``family``) -> the spec
    net: str  # "module:class" of the nn.Module built from the spec


FAMILIES: dict[str, Family] = {
    "wrn": Family(WRNSpec, wrn, "wrn:WideResNet"),
    "vgg": Family(VGGSpec, vgg, "vgg:VGG"),
    "resnet": Family(ResNetSpec, resnet, "resnet:ResNet"),
    "preresnet": Family(PreResNetSpec, preresnet, "resnet:PreResNet"),
    "densenet": Family(DenseNetSpec, densenet, "densenet:DenseNet"),
    "mobilenetv2": Family(MobileNetV2Spec, mobilenetv2, "mobilenetv2:MobileNetV2"),
    "imagenet_resnet": Family(ImageNetResNetSpec, imagenet_resnet, "imagenet_resnet:ImageNetResNet"),
    "imagenet_vgg": Family(ImageNetVGGSpec, imagenet_vgg, "imagenet_vgg:ImageNetVGG"),
}

__all__ = [
    "FAMILIES",
    "ArchSpec",
    "Family",
    "Group",
    "Layer",
    "Slice",
    "build_module",
    "build_spec",
    "densenet",
    "imagenet_resnet",
    "imagenet_vgg",
    "mobilenetv2",
    "preresnet",
    "resnet",
    "spec_from_dict",
    "spec_from_json",
    "vgg",
    "wrn",
]


def spec_from_dict(d: Mapping[str, Any]) -> ArchSpec:
    family = d.get("family")
    if family not in FAMILIES:
        raise ValueError(f"unknown architecture family {family!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[family].spec.from_dict(d)


def spec_from_json(text: str) -> ArchSpec:
    return spec_from_dict(json.loads(text))


def build_spec(options: Mapping[str, Any], *, num_classes: int, in_channels: int, image_size: int) -> ArchSpec:
    """The configured architecture: ``options`` is the model config (``family`` plus that family's keys)."""
    opts = dict(options)
    family = opts.pop("family", "wrn")
    if family not in FAMILIES:
        raise ValueError(f"unknown architecture family {family!r}; expected one of {sorted(FAMILIES)}")
    check_call(FAMILIES[family].builder, opts)  # each option's declared type and bounds: an OptionError naming it
    try:
        return FAMILIES[family].builder(**opts, num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    except TypeError as err:
        raise ValueError(f"model options {options} do not fit family {family!r}: {err}") from err


def build_module(spec: ArchSpec):
    """A freshly initialised ``nn.Module`` of ``spec`` (seed torch first for a fixed init)."""
    module, name = FAMILIES[spec.family].net.split(":")
    return getattr(import_module(f"prunestudy.arch.nets.{module}"), name)(spec)
