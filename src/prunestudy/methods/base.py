"""What a pruning method is: the protocol every method module implements, reached through the registry.

A method declares its hyper-parameters (a :class:`~prunestudy.io.options.Settings` dataclass whose fields
carry their bounds), its kind (``iterative``: a trajectory of single-channel removals with fine-tuning
between them; ``oneshot``: train, prune once to a target, fine-tune), what it produces (a pruned ``spec``
or a ``mask``), what its targets are (fractions, or the names of its settings) and the checks its
settings need against the model. The workflow, the trajectory runner, the one-shot runner and the config
reach it only through these declarations; no code outside ``methods/`` tests a method's name.

A method *scores* and a shared selector in :mod:`prunestudy.methods.selectors` turns scores into a
removal: one channel at a time (Fisher, Taylor), one global threshold (Network Slimming, magnitude),
a kept count per layer (L1-norm, ThiNet). Training-time effects (a subgradient on BN scales, a proximal
step, gradient masking, saliency capture) go through :class:`TrainHooks`, which the loop
(:func:`prunestudy.training.loop.train_step`) calls after ``backward`` and after the optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from prunestudy.io.options import OptionError, Range, Settings
from prunestudy.training.recipe import Recipe

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
    """What a one-shot method decided: channels to remove (structured) or a mask (unstructured), tensors to
    replace after the removal (``edits``: a reconstruction method's refitted weights, by state name, in
    the pruned network's shapes), and a record of how (thresholds, groups it emptied or kept alive)."""

    removals: dict[str, list[int]] = field(default_factory=dict)
    mask: dict[str, torch.Tensor] | None = None
    record: dict[str, Any] = field(default_factory=dict)
    edits: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class IterativeParams(Settings):
    """The prune-and-tune loop every iterative method runs (Crowley et al.'s recipe B by default): fine-tune
    ``every`` minibatches at a constant learning rate, remove one channel, repeat ``max_prunes`` times
    (``chunk`` prunes per job), each setting within the bounds outside which a run would be degenerate."""

    every: Annotated[int, Range(min=1)] = 100  # fine-tuning minibatches between two prunes
    max_prunes: Annotated[int, Range(min=1)] = 1300
    param_floor: Annotated[float, Range(min=0, lt=1)] = 0.0
    chunk: Annotated[int, Range(min=1)] = 100  # prunes per job
    lr: Annotated[float, Range(gt=0)] = 8e-4
    momentum: Annotated[float, Range(min=0, max=1)] = 0.9
    weight_decay: Annotated[float, Range(min=0)] = 5e-4
    batch_size: Annotated[int, Range(min=2)] = 128  # BN needs two examples
    flops_weight: Annotated[float, Range(min=0)] = 0.0

    @property
    def recipe(self) -> Recipe:
        return Recipe(
            epochs=1,
            batch_size=self.batch_size,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            schedule="constant",
        )

    def chunk_range(self, c: int) -> tuple[int, int]:
        return c * self.chunk, min((c + 1) * self.chunk, self.max_prunes)

    @property
    def chunks(self) -> int:
        return math.ceil(self.max_prunes / self.chunk)


class Capture(Protocol):
    """What an iterative method watches fine-tuning with: its hooks, and a score per channel of every group."""

    hooks: TrainHooks

    def scores(self) -> dict[str, torch.Tensor]: ...

    def close(self) -> None: ...


ITERATIVE, ONESHOT = "iterative", "oneshot"
SPEC, MASK = "spec", "mask"  # what a method produces: a smaller architecture, or a mask beside the same one
FRACTION, SETTING = "fraction", "setting"  # what a target is: a fraction in (0, 1), or a setting's name


def check_named_settings(
    settings: Mapping[str, Any], targets: Sequence[Any], widths: Callable[[Mapping[str, Any]], object]
) -> None:
    """Each target names one of ``settings`` and ``widths`` accepts that setting (a ValueError otherwise,
    reported under ``prune.settings.<name>``): the check of every method whose targets are settings."""
    unknown = [t for t in targets if t not in settings]
    if unknown:
        raise ValueError(f"targets {unknown} name no setting in prune.settings")
    for t in targets:
        try:
            widths(settings[t])
        except ValueError as err:
            raise OptionError(f"prune.settings.{t}", str(err)) from err


class Method:
    """A registered pruning method. ``kind`` is :data:`ITERATIVE` or :data:`ONESHOT`.

    A one-shot method defines :meth:`prune` (given the trained state, and with ``calibration`` > 0 the
    network and that many training images' batches); an iterative one defines :meth:`watch`. One whose
    large network trains differently (a sparsity regulariser) defines :meth:`regulariser` (what identifies
    that training) and :meth:`hooks`.
    """

    name: ClassVar[str]
    kind: ClassVar[str]
    params: ClassVar[type]  # the hyper-parameters dataclass, filled from the experiment's config
    produces: ClassVar[str] = SPEC
    targets: ClassVar[str] = FRACTION
    calibration: ClassVar[int] = 0  # one-shot: training images whose activations the pruning reads

    @classmethod
    def check(cls, params: Any, spec: ArchSpec, targets: Sequence[Any]) -> None:
        """Refuse settings or targets that do not fit the large network, before any job: a ValueError is
        about the targets, an :class:`~prunestudy.io.options.OptionError` names the key under the
        experiment (``prune.settings.A``)."""
        wrong = [t for t in targets if isinstance(t, str) != (cls.targets == SETTING)]
        if wrong:
            kind = "names of its settings" if cls.targets == SETTING else "fractions"
            raise ValueError(f"targets {wrong} are not {kind} ({cls.name} prunes to {kind})")

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
    def prune(
        state: Mapping[str, torch.Tensor],
        spec: ArchSpec,
        target: Any,
        params: Any,
        *,
        model: nn.Module | None = None,
        calibration: Iterable[torch.Tensor] = (),
    ) -> Pruning:
        raise NotImplementedError("only a one-shot method prunes once")

    @staticmethod
    def watch(model: nn.Module, spec: ArchSpec) -> Capture:
        raise NotImplementedError("only an iterative method watches fine-tuning")
