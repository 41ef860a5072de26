"""What a pruning method is: its hyper-parameters, its kind, and the training hooks it needs.

The training loop (:func:`prunestudy.training.loop.train_step`) calls a :class:`TrainHooks` after
``backward`` and after the optimizer step, so a method that regularises training (a subgradient on
BN scales, a proximal step, gradient masking) or watches it (Fisher saliency) does so without editing
the loop. Selection (which channels or weights go) is each method's own function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import torch
    from torch import nn

    from prunestudy.arch import ArchSpec
    from prunestudy.training.optim import SGD


@dataclass
class TrainHooks:
    """What a pruning method adds to a training step, without editing the loop: callbacks after
    ``backward`` (a subgradient on BN scales, gradient masking) and after the optimizer step (a
    proximal step, re-applying a mask, counting steps for saliency), each list run in order."""

    after_backward: list[Callable[[], None]] = field(default_factory=list)
    after_step: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class Pruning:
    """What a one-shot method decided: channels to remove (structured) or a mask (unstructured), and a
    record of how (thresholds, groups it emptied or kept alive) for the metrics file."""

    removals: dict[str, list[int]] = field(default_factory=dict)
    mask: dict[str, torch.Tensor] | None = None
    record: dict[str, Any] = field(default_factory=dict)


class Method:
    """A registered pruning method. ``kind`` is ``iterative`` (a trajectory of many small removals,
    fine-tuning between them) or ``oneshot`` (train, prune once to a target, fine-tune).

    A one-shot method defines :meth:`prune`; one whose large network trains differently (a sparsity
    regulariser) defines :meth:`regulariser` (what identifies that training) and :meth:`hooks`.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    params: ClassVar[type]  # the hyper-parameters dataclass, filled from the experiment's config

    @staticmethod
    def base_options(model: Mapping[str, Any]) -> dict[str, Any]:
        """The model options of the large network this method trains (SSS adds its block factors)."""
        return dict(model)

    @staticmethod
    def after_surgery(spec: ArchSpec, state: Mapping[str, torch.Tensor]) -> tuple[ArchSpec, dict[str, torch.Tensor]]:
        """The pruned network as the downstream arms take it (SSS folds its factors away)."""
        return spec, dict(state)

    @staticmethod
    def regulariser(params: Any, target: Any) -> dict[str, Any] | None:
        """The settings that make this method's large network differ from a plain one; None: a plain
        network, shared with every other method that trains the same model plainly."""
        return None

    @staticmethod
    def hooks(model: nn.Module, opt: SGD, spec: ArchSpec, regulariser: Mapping[str, Any]) -> TrainHooks:
        return TrainHooks()

    @staticmethod
    def prune(state: Mapping[str, torch.Tensor], spec: ArchSpec, target: Any, params: Any) -> Pruning:
        raise NotImplementedError("only a one-shot method prunes once")
