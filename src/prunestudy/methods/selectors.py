"""Selection, shared by the methods: scores in, a removal (group name -> channel positions) out.

Scoring says how much each channel (or weight) matters; selection decides which go. Keeping the two apart
lets every method that ranks channels globally share one threshold rule, every per-layer method one
kept-count rule, and every iterative method one argmin, each with the same rule for groups that must
not be emptied (a plain layer whose removal would disconnect the network keeps one channel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from prunestudy.arch import ArchSpec


def smallest(values: Sequence[torch.Tensor], k: int) -> list[tuple[int, int]]:
    """The ``k`` smallest entries of several 1-D tensors taken together, as (tensor, position) pairs; a tie
    goes to the earlier tensor, then the earlier position (a stable sort, on every device)."""
    import torch

    flat = torch.cat([v.detach().float().cpu().flatten() for v in values])
    order = torch.sort(flat, stable=True).indices[:k]
    ends = torch.tensor([v.numel() for v in values]).cumsum(0)
    owner = torch.searchsorted(ends, order, right=True)  # which tensor each flat index falls in
    position = order - torch.cat([torch.zeros(1, dtype=ends.dtype), ends])[owner]
    return list(zip(owner.tolist(), position.tolist(), strict=True))


def global_threshold(scores: Mapping[str, torch.Tensor], fraction: float, spec: ArchSpec) -> tuple[dict, dict]:
    """Remove exactly int(total x fraction) of the channels with the smallest scores over every group.

    A group the threshold would empty is emptied if the spec allows it (a residual branch becomes its
    shortcut) and otherwise keeps its channel of largest score (a plain layer). Returns the removal and a
    record: channels, requested, removed, the threshold value and which groups were emptied or kept one.
    """
    import torch

    names = list(scores)
    k = int(sum(scores[n].numel() for n in names) * fraction)
    picked = smallest([scores[n] for n in names], k)
    removals: dict[str, list[int]] = {}
    for owner, position in picked:
        removals.setdefault(names[owner], []).append(position)
    groups = {g.name: g for g in spec.groups()}
    emptied, kept_one = [], []
    for name, chans in removals.items():
        if len(chans) == groups[name].width:
            if groups[name].emptiable:
                emptied.append(name)
            else:
                chans.remove(int(torch.argmax(scores[name])))
                kept_one.append(name)
        chans.sort()
    last = picked[-1] if picked else None
    record = {
        "channels": sum(scores[n].numel() for n in names),
        "requested": k,
        "removed": sum(len(c) for c in removals.values()),
        "threshold": float(scores[names[last[0]]][last[1]]) if last else 0.0,
        "emptied": emptied,
        "kept_one": kept_one,
    }
    return {n: c for n, c in removals.items() if c}, record


def per_layer(scores: Mapping[str, torch.Tensor], keep: Mapping[str, int]) -> dict[str, list[int]]:
    """In each group, keep the ``keep[group]`` channels of largest score (a tie keeps the earlier channel)."""
    import torch

    removals = {}
    for name, k in keep.items():
        s = scores[name].detach().float().cpu()
        if k >= len(s):
            continue
        kept = set(torch.sort(-s, stable=True).indices[:k].tolist())
        removals[name] = [c for c in range(len(s)) if c not in kept]
    return removals


def one_at_a_time(
    scores: Mapping[str, torch.Tensor], spec: ArchSpec, flops_weight: float = 0.0, base_flops: int | None = None
) -> tuple[int, int, float]:
    """The global argmin over every live channel an iterative method may remove: (group index, channel, score).

    Groups are visited in the spec's order and a tie goes to the first. A group that may not be emptied
    never offers its last channel. With ``flops_weight`` beta > 0 the score is ``s_c - beta * dFLOPs_g /
    FLOPs_base``, where dFLOPs_g is what removing one channel of group g saves, so channels that are
    cheap to keep are favoured less; beta = 0 is the reference behaviour.
    """
    import torch

    best: tuple[float, int, int] | None = None
    for i, g in enumerate(spec.groups()):
        if g.name not in scores or g.width < (1 if g.emptiable else 2):
            continue
        score = scores[g.name].detach().double().cpu()
        if flops_weight:
            fewer = spec.kept({g.name: range(g.width - 1)})
            saved = (spec.flops() - fewer.flops()) / (base_flops or spec.flops())
            score = score - flops_weight * saved
        c = int(torch.argmin(score))
        if best is None or float(score[c]) < best[0]:
            best = (float(score[c]), i, c)
    if best is None:
        raise ValueError("no prunable channel left")
    return best[1], best[2], best[0]
