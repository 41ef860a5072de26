"""Training recipes: torch-free, so that config checks and arm planning never import torch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Recipe:
    """An SGD training recipe. ``milestones`` are epochs; ``schedule`` is multistep, cosine or constant."""

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.2

    @classmethod
    def from_dict(cls, d: dict) -> Recipe:
        d = dict(d)
        d["milestones"] = tuple(int(m) for m in d.get("milestones", ()))
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    def stretched(self, epochs: int) -> Recipe:
        """The same schedule over ``epochs``: each milestone m becomes int(m x epochs / self.epochs), in whole
        numbers (Liu's int(0.5 E_B) and int(0.75 E_B) for milestones at 80 and 120 of 160)."""
        return replace(self, epochs=epochs, milestones=tuple(m * epochs // self.epochs for m in self.milestones))

    def lr_at(self, epoch: int) -> float:
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * epoch / self.epochs))
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)
