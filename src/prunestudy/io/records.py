"""The metrics record: one JSON per trained network, with the same schema for every arm."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from prunestudy.arch import ArchSpec
from prunestudy.io.artifacts import expect, file_digest, read_record, versions, write_record
from prunestudy.pruning.arms import ARMS


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
    identity: dict[str, Any]  # the slot this run fills: experiment, arm, seed, slot (target or member label)
    outputs: dict[str, str]  # content hash of each file the job wrote beside this record
    output_stats: dict[str, list[int]]  # (size, mtime_ns) of each of them when written: the audit's fast path
    inputs: dict[str, str]  # content hash of each input artefact it was made from, by role
    runtime: dict[str, Any]  # what shaped the arithmetic: device name, driver, CUDA/cuDNN, threads, bf16, compile
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
            from prunestudy.pruning import masks

            kw["extra"] = {**kw.get("extra", {}), "dense_params": params, "dense_flops": flops, "masked": True}
            params, flops = masks.nonzero_params(spec, mask), masks.nonzero_flops(spec, mask)
        return cls(spec=spec.to_dict(), spec_id=spec.spec_id, params=params, flops=flops, macs=flops // 2, **kw)

    def write(self, path: str | os.PathLike) -> None:
        """The record, sealed with the digest of its own content (:func:`prunestudy.io.artifacts.seal`)."""
        write_record(path, asdict(self))


def identity(experiment: str, arm: str, seed: int, slot: str | None) -> dict[str, Any]:
    """What a run is: the key that the workflow's expected-runs list and every consumer check."""
    return {"experiment": experiment, "arm": arm, "seed": seed, "slot": slot}


BESIDE = ("model.pt", "init.pt", "spec.json", "mask.pt")  # what a job may write next to its metrics.json


def outputs_beside(record_path: str | os.PathLike, names: tuple[str, ...] = BESIDE) -> dict[str, Any]:
    """The ``outputs`` and ``output_stats`` of a record: content hash and (size, mtime_ns) of each artefact
    the job wrote next to its metrics.json (those that exist)."""
    from pathlib import Path

    from prunestudy.io.integrity import output_stats

    folder = Path(record_path).parent
    present = [n for n in names if (folder / n).exists()]
    return {"outputs": {n: file_digest(folder / n) for n in present}, "output_stats": output_stats(folder, present)}


def write_job_record(path: str | os.PathLike, identity: dict[str, Any], outputs: list[str], **extra: Any) -> None:
    """The record of a job that trains no network (a pruning chunk, a trajectory): what it is, and the hash and
    (size, mtime_ns) of each file it wrote (``outputs``, relative to the record's folder), sealed."""
    write_record(path, {"identity": identity, **outputs_beside(path, tuple(outputs)), "versions": versions(), **extra})


def check_record(path: str | os.PathLike, expected: dict[str, Any]) -> dict:
    """The metrics.json at ``path``, refused unless it is intact and the run ``expected`` names."""
    record = read_record(path)
    expect(path, "the run", expected, record.get("identity"))
    return record


def check_output(path: str | os.PathLike, record_path: str | os.PathLike, expected: dict[str, Any]) -> None:
    """``path`` is the file its producer recorded in ``record_path`` (the metrics.json beside it), for ``expected``."""
    from pathlib import Path

    record = check_record(record_path, expected)
    recorded = record.get("outputs", {}).get(Path(path).name)
    expect(path, f"the content {record_path} recorded (hash)", recorded, file_digest(path))
