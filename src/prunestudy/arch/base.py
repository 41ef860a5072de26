"""The spec protocol: what every architecture family's description provides.

A spec is a frozen dataclass that names one network completely. It serialises to JSON, hashes to a
stable id, lists its prunable channel groups (and which tensors a removal slices), gives a new spec
from new widths or from the channels a pruning method keeps, scales its widths, and lists its layers
so that one torch-free counter (:mod:`prunestudy.arch.counting`) gives params and FLOPs for every
family. Building the ``nn.Module`` goes through the registry in :mod:`prunestudy.arch`, imported
lazily: the spec modules never import torch or their modules, so config validation and the
Snakefile stay torch-free, and no spec module and module module import each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from prunestudy.arch.counting import Layer, count


@dataclass(frozen=True)
class Slice:
    """A tensor (state-dict name) whose dimension ``dim`` indexes a group's channels."""

    tensor: str
    dim: int


@dataclass(frozen=True)
class Group:
    """A set of channels that are removed together: a conv's outputs with everything that reads them.

    ``tap`` names the module whose output carries these channels (for activation-based saliency);
    ``scale`` the BN weight whose channels scale them (for Network Slimming), with ``scale_index`` the
    BN channel of each position where they differ (a channel selection reads a subset of its BN);
    ``emptiable`` says whether removing every channel is allowed (a residual branch then becomes its
    shortcut) or refused (a plain layer, whose removal would disconnect the network).
    """

    name: str
    width: int
    slices: tuple[Slice, ...]
    tap: str | None = None
    emptiable: bool = True
    scale: str | None = None
    scale_index: tuple[int, ...] | None = None


def bn_slices(prefix: str) -> tuple[Slice, ...]:
    """All four BN tensors, sliced on their only dimension."""
    return tuple(Slice(f"{prefix}.{t}", 0) for t in ("weight", "bias", "running_mean", "running_var"))


def select_group(name: str, index: tuple[int, ...], bn: str, consumer: str, emptiable: bool = True) -> Group:
    """A channel selection of the ``bn`` module's channels ``index``: the input columns of the ``consumer``
    weight that the selection feeds (the BN itself keeps every channel)."""
    return Group(name, len(index), (Slice(consumer, 1),), None, emptiable, f"{bn}.weight", tuple(index))


def conv_group(
    name: str, width: int, producer: str, bn: str, consumer: str, tap: str | None = None, emptiable: bool = True
) -> Group:
    """A conv's output channels: the ``producer`` conv's weight rows, the ``bn`` module after it, and the
    input columns of the ``consumer`` weight (a conv or a linear layer) that reads them."""
    slices = (Slice(f"{producer}.weight", 0), *bn_slices(bn), Slice(consumer, 1))
    return Group(name, width, slices, tap, emptiable, f"{bn}.weight")


class ArchSpec:
    """Base of every family's spec dataclass (which must be ``frozen=True``)."""

    family: ClassVar[str]
    num_classes: int
    in_channels: int
    image_size: int

    # --- what a family defines ----------------------------------------------------------------------
    def groups(self) -> tuple[Group, ...]:
        """The prunable channel groups, in a fixed order (ties in a global ranking go to the first)."""
        raise NotImplementedError

    def with_widths(self, widths: Sequence[int]) -> ArchSpec:
        """The same network with each group at the given width (in :meth:`groups` order)."""
        raise NotImplementedError

    def stages(self) -> tuple[tuple[int, ...], ...]:
        """The prunable groups (indices into :meth:`groups`) by the feature-map size they run at, in order.

        These are Liu et al.'s "stages", over which guided pruning averages channel counts
        (:func:`prunestudy.pruning.budgets.guided_spec`). Every group is in exactly one stage; a stage
        may hold groups that are not adjacent in :meth:`groups` order (a DenseNet's transition).
        """
        raise NotImplementedError

    def layers(self) -> tuple[Layer, ...]:
        raise NotImplementedError

    @staticmethod
    def paper_name(options: Mapping[str, Any]) -> str:
        """The name the papers (and ``config/references.yaml``) print for these model options."""
        raise NotImplementedError

    def kept(self, keep: Mapping[str, Sequence[int]]) -> ArchSpec:
        """The spec after a removal that keeps, in each named group, the listed channel positions.

        Width-only families ignore which positions remain; a family whose spec names channels (a
        channel selection) overrides this.
        """
        names = [g.name for g in self.groups()]
        unknown = set(keep) - set(names)
        if unknown:
            raise KeyError(f"{self.spec_id} has no group {sorted(unknown)}")
        return self.with_widths([len(keep[g.name]) if g.name in keep else g.width for g in self.groups()])

    # --- shared ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, tuples as lists, plus the family: plain JSON data."""
        return {"family": self.family, **{f.name: _plain(getattr(self, f.name)) for f in fields(self)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ArchSpec:
        if d.get("family") != cls.family:
            raise ValueError(f"a {cls.family} spec cannot be read from a {d.get('family')!r} one")
        unknown = set(d) - {f.name for f in fields(cls)} - {"family"}
        if unknown:
            raise ValueError(f"unknown {cls.family} spec keys {sorted(unknown)}")
        return cls(**{k: _tupled(v) for k, v in d.items() if k != "family"})

    @property
    def widths_vector(self) -> tuple[int, ...]:
        return tuple(g.width for g in self.groups())

    @property
    def prunable_channels(self) -> int:
        """Channels still available to prune: the sum of the group widths."""
        return sum(self.widths_vector)

    def scaled(self, factor: float) -> ArchSpec:
        """Every group width times ``factor``, rounded; an emptied group stays empty, a live one keeps >= 1."""
        return self.with_widths(tuple(0 if w == 0 else max(1, round(w * factor)) for w in self.widths_vector))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def id_prefix(self) -> str:
        return self.family

    @property
    def spec_id(self) -> str:
        """Family-named, stable id: a prefix plus the first 10 hex digits of the canonical JSON's SHA-256."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:10]
        return f"{self.id_prefix}-{digest}"

    def build(self):
        """A freshly initialised ``nn.Module`` (seed torch first for a fixed init), through the registry."""
        from prunestudy.arch import build_module

        return build_module(self)

    def param_count(self) -> int:
        """Learnable parameters of the built module (conv weights, BN affine, linear), no running stats."""
        return count(self.layers())[0]

    def flops(self) -> int:
        """Forward FLOPs of one image as ``torch.utils.flop_counter`` counts them (multiply-add = 2 FLOPs)."""
        return count(self.layers())[1]


def stages_by(keys: Sequence[Hashable]) -> tuple[tuple[int, ...], ...]:
    """Group indices by key (one key per group, in :meth:`ArchSpec.groups` order), stages in the order
    their keys first appear: each family only says which stage each group belongs to."""
    out: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return tuple(tuple(v) for v in out.values())


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, tuple) else value


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def conv_out(size: int, stride: int) -> int:
    """Output side of a 3x3 conv with padding 1, or a 1x1 conv without, at ``stride``."""
    return (size - 1) // stride + 1
