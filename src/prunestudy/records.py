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
    def for_spec(cls, spec: ArchSpec, mask: dict | None = None, **kw: Any) -> RunRecord:
        """The record of a network of ``spec``; with a ``mask``, params are nonzeros and FLOPs count only
        nonzero conv weights (``extra.dense_params`` / ``extra.dense_flops`` keep the dense counts)."""
        params, flops = spec.param_count(), spec.flops()
        if mask:
            from prunestudy import masks

            kw["extra"] = {**kw.get("extra", {}), "dense_params": params, "dense_flops": flops, "masked": True}
            params, flops = masks.nonzero_params(spec, mask), masks.nonzero_flops(spec, mask)
        return cls(spec=spec.to_dict(), spec_id=spec.spec_id, params=params, flops=flops, macs=flops // 2, **kw)

    def write(self, path: str | os.PathLike) -> None:
        write_json(path, asdict(self))
