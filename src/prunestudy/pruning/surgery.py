"""Physical removal of any set of channels, from any groups, of any family, in one call.

Surgery works on name-keyed dicts (a state dict, or the optimizer's momentum buffers by parameter
name): every tensor that a group's :class:`~prunestudy.arch.Slice` names loses the removed indices
along its dimension, keeping its memory layout, and tensors that the new network no longer has (the
branch of an emptied residual block, an emptied DenseNet layer) are dropped. The result loads into
a module freshly built from the new spec, so the spec stays the one description of the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import torch
from torch import nn

from prunestudy.arch import ArchSpec
from prunestudy.training.optim import SGD


class SurgeryError(ValueError):
    """A removal that names no group, a channel out of range, or would empty a plain layer."""


def keep_positions(spec: ArchSpec, removals: Mapping[str, Iterable[int]]) -> dict[str, list[int]]:
    """For each named group, the channel positions that remain; checks every removal first."""
    groups = {g.name: g for g in spec.groups()}
    keep = {}
    for name, channels in removals.items():
        if name not in groups:
            raise SurgeryError(f"{spec.spec_id} has no prunable group {name!r}")
        g, drop = groups[name], set(channels)
        bad = sorted(c for c in drop if not 0 <= c < g.width)
        if bad:
            raise SurgeryError(f"group {name} has {g.width} channels; cannot remove {bad}")
        if len(drop) == g.width and drop and not g.emptiable:
            raise SurgeryError(f"group {name} is a plain layer and cannot be emptied")
        keep[name] = [c for c in range(g.width) if c not in drop]
    return keep


def _same_layout(src: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    if src.dim() == 4 and not src.is_contiguous() and src.is_contiguous(memory_format=torch.channels_last):
        return out.contiguous(memory_format=torch.channels_last)
    return out.contiguous()


@lru_cache(maxsize=16)
def state_keys(spec: ArchSpec) -> frozenset[str]:
    """The state-dict names of the network ``spec`` builds (on the meta device: no init, no memory).

    Cached: a prune step cuts the weights and then the momentum to the same new spec, and building
    even a meta network costs about 12 ms for WRN-40-2, on the trajectory's hot path.
    """
    with torch.device("meta"):
        return frozenset(spec.build().state_dict())


def remove_channels(
    spec: ArchSpec, tensors: Mapping[str, torch.Tensor], removals: Mapping[str, Iterable[int]]
) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
    """Cut the ``removals`` (group name -> channel positions) out of ``tensors``; returns the new spec too.

    Works for a state dict and for momentum buffers alike.
    """
    keep = keep_positions(spec, removals)
    new_spec = spec.kept(keep)
    cuts: dict[str, list[tuple[int, list[int]]]] = {}
    for g in spec.groups():
        if g.name in keep:
            for s in g.slices:
                cuts.setdefault(s.tensor, []).append((s.dim, keep[g.name]))
    wanted = state_keys(new_spec)
    out = {}
    for name, t in tensors.items():
        if name not in wanted:
            continue
        sliced = t
        for dim, positions in cuts.get(name, ()):
            sliced = sliced.index_select(dim, torch.tensor(positions, dtype=torch.long, device=t.device))
        out[name] = t if sliced is t else _same_layout(t, sliced)
    return new_spec, out


def momentum_by_name(model: nn.Module, opt: SGD) -> dict[str, torch.Tensor]:
    return {n: opt.buffers[p] for n, p in model.named_parameters() if p in opt.buffers}


def load_momentum(model: nn.Module, opt: SGD, buffers: Mapping[str, torch.Tensor]) -> None:
    for n, p in model.named_parameters():
        if n in buffers:
            opt.buffers[p] = buffers[n].to(p.device).clone()


def check_state(spec: ArchSpec, state: Mapping[str, torch.Tensor], source: object) -> None:
    """Refuse weights that do not fit ``spec`` (missing, extra or misshapen tensors), naming ``source``."""
    from prunestudy.io.artifacts import REDO, ArtifactError

    with torch.device("meta"):
        wanted = {k: tuple(v.shape) for k, v in spec.build().state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    problems = [f"{k} missing" for k in wanted if k not in found]
    problems += [f"{k} unexpected" for k in found if k not in wanted]
    problems += [f"{k} is {found[k]}, not {wanted[k]}" for k in wanted if k in found and found[k] != wanted[k]]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ArtifactError(f"{source}: the weights do not fit {spec.spec_id}: {problems[0]}{more}; {REDO}")


def materialise(spec: ArchSpec, state: Mapping[str, torch.Tensor], device: torch.device | str = "cpu") -> nn.Module:
    """Build ``spec`` without a costly random init and load ``state`` into it."""
    with torch.device("meta"):
        model = spec.build()
    model.load_state_dict(state, assign=True)
    return model.to(device)
