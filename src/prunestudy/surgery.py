"""Physical removal of one channel from weights, BN statistics and optimizer momentum.

Surgery works on name-keyed dicts (a state dict and the momentum buffers by parameter name), so it
is pure tensor slicing and the result loads into a module freshly built from the new spec: the
spec stays the one description of the network.
"""

from __future__ import annotations

import torch
from torch import nn

from prunestudy.models import Block
from prunestudy.optim import SGD
from prunestudy.spec import ArchSpec

# tensor name inside a block -> the dimension that indexes the mid channel
_MID_DIM = {
    "conv1.weight": 0,
    "bn2.weight": 0,
    "bn2.bias": 0,
    "bn2.running_mean": 0,
    "bn2.running_var": 0,
    "conv2.weight": 1,
}


def remove_channel(
    spec: ArchSpec, tensors: dict[str, torch.Tensor], block: int, channel: int
) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
    """Cut ``channel`` out of block ``block``; works for a state dict and for momentum buffers alike.

    When the block empties, its branch tensors go, and so does ``bn1`` if the shortcut is the
    identity, matching what :meth:`ArchSpec.build` creates for a mid of 0.
    """
    b = spec.blocks[block]
    if not 0 <= channel < b.mid:
        raise IndexError(f"block {block} has {b.mid} channels; cannot remove channel {channel}")
    mids = list(spec.mids)
    mids[block] -= 1
    new_spec = spec.with_mids(mids)
    prefix = f"blocks.{block}."
    out: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        local = name[len(prefix) :] if name.startswith(prefix) else None
        if local is None:
            out[name] = t
        elif mids[block] == 0:
            branch = local.split(".")[0] in ("conv1", "bn2", "conv2")
            if not branch and (b.projects or not local.startswith("bn1.")):
                out[name] = t
        elif local in _MID_DIM:
            dim = _MID_DIM[local]
            keep = torch.cat([torch.arange(channel), torch.arange(channel + 1, t.shape[dim])]).to(t.device)
            out[name] = t.index_select(dim, keep).contiguous()
        else:
            out[name] = t
    return new_spec, out


def momentum_by_name(model: nn.Module, opt: SGD) -> dict[str, torch.Tensor]:
    return {n: opt.buffers[p] for n, p in model.named_parameters() if p in opt.buffers}


def load_momentum(model: nn.Module, opt: SGD, buffers: dict[str, torch.Tensor]) -> None:
    for n, p in model.named_parameters():
        if n in buffers:
            opt.buffers[p] = buffers[n].to(p.device).clone()


def rebuild_block(model: nn.Module, spec: ArchSpec, state: dict[str, torch.Tensor], block: int) -> nn.Module:
    """Swap block ``block`` of ``model`` for one built from ``spec`` holding ``state``'s tensors.

    After one removal only that block changed shape, so rebuilding it alone gives the same network
    as :func:`materialise` at a fraction of the cost; the other modules keep their parameters.
    """
    prefix = f"blocks.{block}."
    with torch.device("meta"):
        new = Block(spec.blocks[block])
    new.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}, assign=True)
    model.blocks[block] = new
    model.spec = spec
    return model


def materialise(spec: ArchSpec, state: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> nn.Module:
    """Build ``spec`` without a costly random init and load ``state`` into it."""
    with torch.device("meta"):
        model = spec.build()
    model.load_state_dict(state, assign=True)
    return model.to(device)
