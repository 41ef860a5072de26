"""Liu et al.'s one-shot pipeline: prune a trained large network once to a target, then fine-tune it.

Both steps hand on what every downstream arm reads: a spec, plus a mask for unstructured pruning.
The fine-tuned network's record is the ``pruned`` arm; Scratch-E and Scratch-B then retrain the same
spec (or the same mask, with weights re-drawn) from scratch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from prunestudy.arch import ArchSpec
from prunestudy.methods.base import Method
from prunestudy.pruning import masks
from prunestudy.pruning.surgery import remove_channels
from prunestudy.training.data import Dataset

if TYPE_CHECKING:
    from prunestudy.training.imagefolder import ImageFolderData


@dataclass
class PrunedNet:
    spec: ArchSpec
    state: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor] | None = None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return masks.nonzero_params(self.spec, self.mask) if self.mask else self.spec.param_count()

    @property
    def flops(self) -> int:
        return masks.nonzero_flops(self.spec, self.mask) if self.mask else self.spec.flops()


def prune_once(
    state: Mapping[str, torch.Tensor],
    spec: ArchSpec,
    method: type[Method],
    target: Any,
    params: Any,
    calibration: Iterable[torch.Tensor] = (),
) -> PrunedNet:
    """Apply ``method`` once: physical removal for a structured method, a mask for an unstructured one.

    A method that reads activations (``method.calibration`` > 0) gets the large network, in eval mode, and
    ``calibration`` (batches of normalised training images); tensors it refits (``Pruning.edits``)
    replace the pruned network's after the removal.
    """
    model = None
    if method.calibration:
        from prunestudy.pruning.surgery import materialise

        model = materialise(spec, state).eval()
    p = method.prune(state, spec, target, params, model=model, calibration=calibration)
    if p.mask is not None:
        pruned = {n: t.clone() for n, t in state.items()}
        for n, m in p.mask.items():
            pruned[n].mul_(m.to(pruned[n].dtype))
        return PrunedNet(spec, pruned, p.mask, p.record)
    new_spec, new_state = method.after_surgery(*remove_channels(spec, state, p.removals))
    for name, tensor in p.edits.items():
        if new_state[name].shape != tensor.shape:
            raise ValueError(
                f"{method.name} refitted {name} as {tuple(tensor.shape)}, not {tuple(new_state[name].shape)}"
            )
        new_state[name] = tensor.to(new_state[name].dtype)
    removed = {n: sorted(int(c) for c in chans) for n, chans in p.removals.items()}
    return PrunedNet(
        new_spec, new_state, None, {**p.record, "removed": {n: len(c) for n, c in removed.items()}, "removals": removed}
    )


def calibration_batches(
    data: Dataset | ImageFolderData, images: int, seed: int, batch_size: int = 100
) -> list[torch.Tensor]:
    """``images`` training images drawn without replacement by ``seed``, normalised, in batches on the CPU
    (where the large network is materialised for a method that reads its activations). ImageNet's are
    decoded with the evaluation transform (resize, centre crop): the activations of the images as they are."""
    gen = torch.Generator().manual_seed(seed)
    if not isinstance(data, Dataset):
        idx = torch.randperm(data.size("train"), generator=gen)[:images]
        return [data.images("train", part) for part in idx.split(batch_size)]
    idx = torch.randperm(len(data.train), generator=gen)[:images]
    x = data.train.x[idx.to(data.train.x.device)].cpu()
    return list(data.normalize(x).split(batch_size))


def winning_ticket(
    init: Mapping[str, torch.Tensor],
    base: ArchSpec,
    pruned: ArchSpec,
    method: type[Method],
    removals: Mapping[str, list[int]] | None = None,
    mask: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """The pruned network's weights at the large network's initialisation (Liu et al., section 6, after
    Frankle & Carbin): the kept channels' initial weights (structured: the pruning's removals cut from the
    initial state, as from the trained one), or the initial weights under the mask (unstructured)."""
    if mask is not None:
        return {n: t * mask[n].to(t.dtype) if n in mask else t.clone() for n, t in init.items()}
    spec, state = method.after_surgery(*remove_channels(base, init, removals or {}))
    if spec != pruned:
        raise ValueError(f"the recorded removals make {spec.spec_id} of the initial weights, not {pruned.spec_id}")
    return state


def load_weights(state: Mapping[str, torch.Tensor]) -> Callable[[nn.Module], None]:
    """An ``init`` for :func:`prunestudy.training.loop.fit` that starts from given weights (fine-tuning)."""

    def init(model: nn.Module) -> None:
        model.load_state_dict(state)

    return init


def redraw_masked(mask: Mapping[str, torch.Tensor]) -> Callable[[nn.Module], None]:
    """An ``init`` for Scratch-E/B on a mask (Liu et al.): each masked conv's weights are re-drawn from
    N(0, sqrt(2/n)) with n = nonzeros / in_channels, then masked."""

    @torch.no_grad()
    def init(model: nn.Module) -> None:
        masks.check(model, mask)
        params = dict(model.named_parameters())
        for name, m in mask.items():
            w = params[name]
            n = float(m.sum()) / w.shape[1]
            w.normal_(0.0, math.sqrt(2.0 / n) if n else 0.0)
            w.mul_(m.to(w.dtype))

    return init
