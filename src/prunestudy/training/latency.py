"""Latency of every distinct network of an experiment, measured in one job that has its device alone.

Latency depends on the architecture, not on the weights, so it is measured on a freshly built
network of each spec, after all of an experiment's training has finished. Measuring inside the
training jobs, while other jobs shared the GPU or the cores, timed the neighbours as much as the
network.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from prunestudy.arch import ArchSpec, spec_from_dict
from prunestudy.io.artifacts import read_record
from prunestudy.training.runtime import Runtime

COLUMNS = ("spec_id", "latency_ms", "latency_batch", "device", "threads")


def measure_latency(
    model: nn.Module, spec: ArchSpec, rt: Runtime, batch_size: int, repeats: int = 20, warmup: int = 5
) -> float:
    """Median milliseconds per forward pass of one batch, in eval mode, after warm-up."""
    times = sorted(latency_samples(model, spec, rt, batch_size, repeats, warmup))
    return float(times[len(times) // 2])


@torch.no_grad()
def latency_samples(
    model: nn.Module, spec: ArchSpec, rt: Runtime, batch_size: int, repeats: int = 20, warmup: int = 5
) -> list[float]:
    """Milliseconds of each timed forward pass of one batch, in eval mode, after ``warmup`` untimed ones."""
    model.eval()
    x = torch.randn(batch_size, spec.in_channels, spec.image_size, spec.image_size, device=rt.device)
    x = x.contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(warmup + repeats):
        if rt.cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with rt.autocast():
            model(x)
        if rt.cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def latency_table(metrics: Iterable[str | Path], rt: Runtime, settings: dict) -> pd.DataFrame:
    """One row per distinct spec among the ``metrics`` files, in first-seen order."""
    specs: dict[str, ArchSpec] = {}
    for path in metrics:
        record = read_record(path)
        specs.setdefault(record["spec_id"], spec_from_dict(record["spec"]))
    rows = []
    for spec_id, spec in specs.items():
        torch.manual_seed(0)
        model = rt.prepare(spec.build())
        ms = measure_latency(model, spec, rt, settings["batch_size"], settings["repeats"], settings["warmup"])
        rows.append((spec_id, ms, settings["batch_size"], str(rt.device), torch.get_num_threads()))
    return pd.DataFrame(rows, columns=list(COLUMNS))
