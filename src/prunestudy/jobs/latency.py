"""``prunestudy latency``: every distinct network of an experiment timed alone on its device."""

from __future__ import annotations

from collections.abc import Sequence

from prunestudy.jobs.common import log


def latency(*, metrics: Sequence[str], latency: dict, out: str, device: str, threads: int, jobs_per_gpu: int) -> None:
    """Time every distinct network of an experiment, alone on the device (all its GPU slots held)."""
    from prunestudy.io.artifacts import atomic_write_text
    from prunestudy.jobs.common import start_torch
    from prunestudy.training.latency import latency_table
    from prunestudy.training.runtime import Runtime

    start_torch(threads)
    rt = Runtime.pick(device, jobs_per_gpu, alone=True)
    df = latency_table(metrics, rt, latency)
    atomic_write_text(out, df.to_csv(index=False))
    log.info("latency of %d networks on %s", len(df), rt.describe().get("name", rt.device))
