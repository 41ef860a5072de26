"""The metrics record: one JSON per trained network, with the same schema for every arm."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from prunestudy.arch import ArchSpec
from prunestudy.arms import ARMS
from prunestudy.artifacts import versions, write_json


@dataclass
class RunRecord:
    """Which network, trained how, scoring what, and produced by which code."""

    experiment: str
    arm: str
    spec: dict
    spec_id: str
    params: int
    flops: int
    macs: int
    latency_ms: float
    latency_batch: int
    seed: int
    derived_seeds: dict[str, int]
    recipe: dict
    epochs: int
    final_train_loss: float
    val_error: float
    test_error: float
    wall_time_s: float
    throughput_img_s: float
    device: str
    config_hash: str
    versions: dict[str, str] = field(default_factory=versions)
    extra: dict[str, Any] = field(default_factory=dict)
    finished_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def __post_init__(self) -> None:
        if self.arm not in ARMS:
            raise ValueError(f"unknown arm {self.arm!r}; expected one of {ARMS}")

    @classmethod
    def for_spec(cls, spec: ArchSpec, **kw: Any) -> RunRecord:
        return cls(
            spec=spec.to_dict(),
            spec_id=spec.spec_id,
            params=spec.param_count(),
            flops=spec.flops(),
            macs=spec.macs(),
            **kw,
        )

    def write(self, path: str | os.PathLike) -> None:
        write_json(path, asdict(self))
