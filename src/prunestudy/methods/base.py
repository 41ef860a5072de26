"""What a pruning method is: its hyper-parameters, its kind, and the training hooks it needs.

The training loop (:func:`prunestudy.train.train_step`) calls a :class:`TrainHooks` after
``backward`` and after the optimizer step, so a method that regularises training (a subgradient on
BN scales, a proximal step, gradient masking) or watches it (Fisher saliency) does so without editing
the loop. Selection (which channels or weights go) is each method's own function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class TrainHooks:
    """What a pruning method adds to a training step, without editing the loop: callbacks after
    ``backward`` (a subgradient on BN scales, gradient masking) and after the optimizer step (a
    proximal step, re-applying a mask, counting steps for saliency), each list run in order."""

    after_backward: list[Callable[[], None]] = field(default_factory=list)
    after_step: list[Callable[[], None]] = field(default_factory=list)

    def __add__(self, other: TrainHooks) -> TrainHooks:
        return TrainHooks(self.after_backward + other.after_backward, self.after_step + other.after_step)


class Method:
    """A registered pruning method. ``kind`` is ``iterative`` (a trajectory of many small removals,
    fine-tuning between them) or ``oneshot`` (train, prune once to a target, fine-tune)."""

    name: ClassVar[str]
    kind: ClassVar[str]
    params: ClassVar[type]  # the hyper-parameters dataclass, filled from the experiment's config
