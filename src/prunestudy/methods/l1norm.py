"""L1-norm filter pruning (Li et al. 2017), with Liu et al.'s CIFAR settings (docs/deviations.md).

Per layer, filters are ranked by the sum of absolute weights (not the signed sum, Crowley et al.'s
baseline bug) and the top ``int(width * (1 - ratio))`` are kept; ties keep the earlier filter. A
setting (the experiment's target names one) gives either explicit ``widths`` per group (VGG-16-A)
or, for a CIFAR ResNet, a pruning ``ratios`` per stage and the blocks to ``skip`` (Li et al.'s
sensitive layers). Li et al. name the skipped layers by conv id, counting every conv from the stem
as 1, so a block's first conv is id 2b+2: ResNet-56 A skips conv ids 16, 20, 38, 54 = blocks 7, 9,
18, 26.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from prunestudy.methods.base import ONESHOT, SETTING, Method, Pruning, check_named_settings
from prunestudy.methods.selectors import per_layer

if TYPE_CHECKING:
    import torch

    from prunestudy.arch import ArchSpec


@dataclass(frozen=True)
class L1Params:
    """``settings``: name -> {"widths": [...]} or {"ratios": [per stage], "skip": [block indices]}."""

    settings: dict[str, dict[str, list]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, s in self.settings.items():
            if set(s) not in ({"widths"}, {"ratios"}, {"ratios", "skip"}):
                raise ValueError(f"setting {name!r} needs 'widths', or 'ratios' (and 'skip'); got {sorted(s)}")
            if any(not 0 <= r < 1 for r in s.get("ratios", ())):
                raise ValueError(f"setting {name!r}: ratios must lie in [0, 1)")


def target_widths(spec: ArchSpec, setting: Mapping[str, list]) -> list[int]:
    """The width every group keeps under ``setting``."""
    groups = spec.groups()
    if "widths" in setting:
        if len(setting["widths"]) != len(groups):
            raise ValueError(f"{len(setting['widths'])} widths for the {len(groups)} groups of {spec.spec_id}")
        return [int(w) for w in setting["widths"]]
    n = getattr(spec, "n", None)
    if spec.family != "resnet" or n is None:
        raise ValueError("per-stage ratios are defined for CIFAR ResNets (family resnet); give widths instead")
    skip = set(setting.get("skip", ()))
    ratios = setting["ratios"]
    if len(ratios) != 3:
        raise ValueError(f"give one ratio per stage (3), got {len(ratios)}")
    return [g.width if i in skip else int(g.width * (1 - ratios[i // n])) for i, g in enumerate(groups)]


def prune_widths(spec: ArchSpec, setting: Mapping[str, list]) -> list[int]:
    """The widths a setting keeps, checked against the spec."""
    widths = target_widths(spec, setting)
    check_widths(spec, widths)
    return widths


def check_widths(spec: ArchSpec, widths: list[int]) -> None:
    for g, w in zip(spec.groups(), widths, strict=True):
        if not (0 if g.emptiable else 1) <= w <= g.width:
            raise ValueError(f"group {g.name} cannot keep {w} of its {g.width} channels")


def filter_norms(state: Mapping[str, torch.Tensor], group_producer: str) -> torch.Tensor:
    """Sum of |w| of every output filter of a conv weight."""
    w = state[group_producer].detach().float().cpu()
    return w.abs().sum(dim=tuple(range(1, w.dim())))


class L1Norm(Method):
    name: ClassVar[str] = "l1"
    kind: ClassVar[str] = ONESHOT
    params: ClassVar[type] = L1Params
    targets: ClassVar[str] = SETTING

    @classmethod
    def check(cls, params: L1Params, spec: ArchSpec, targets: Sequence[Any]) -> None:
        """Each target names a setting, and each setting's widths fit the large network."""
        super().check(params, spec, targets)
        check_named_settings(params.settings, targets, lambda s: prune_widths(spec, s))

    @staticmethod
    def prune(state: Mapping[str, torch.Tensor], spec: ArchSpec, target: str, params: L1Params, **_) -> Pruning:
        if target not in params.settings:
            raise ValueError(f"no L1 setting {target!r}; settings are {sorted(params.settings)}")
        widths = prune_widths(spec, params.settings[target])
        keep, norms = {}, {}
        for g, k in zip(spec.groups(), widths, strict=True):
            if k == g.width:
                continue
            producer = g.slices[0]
            if producer.dim != 0:
                raise ValueError(f"group {g.name} is not a conv's outputs; L1 ranks filters")
            keep[g.name], norms[g.name] = k, filter_norms(state, producer.tensor)
        return Pruning(removals=per_layer(norms, keep), record={"setting": target, **params.settings[target]})
