"""What every job shares: its context (experiment, seed, config slices, device), keys and records."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunestudy.io.artifacts import config_hash
from prunestudy.io.stages import LOGIC_VERSIONS

if TYPE_CHECKING:
    from torch import nn

    from prunestudy.arch import ArchSpec
    from prunestudy.training.data import Augment, Batches, Dataset
    from prunestudy.training.loop import FitResult
    from prunestudy.training.runtime import Runtime

log = logging.getLogger("prunestudy")


def start_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)


def start_torch(threads: int) -> None:
    """Torch threads for a job that computes (results depend on them; the config sets them)."""
    import torch

    torch.set_num_threads(threads)


def job_key(stage: str, **parts: Any) -> str:
    """The resume key of a job: a hash of everything its work depends on, with its stage's logic version
    (:mod:`prunestudy.io.stages`), so that state written for other settings or older code is never resumed."""
    return config_hash({**parts, "logic": LOGIC_VERSIONS[stage]})


@dataclass(frozen=True)
class Context:
    """One job of one experiment: which run, the data and model slices, and where it computes."""

    experiment: str
    seed: int
    data: dict
    model: dict
    device: str = "auto"
    threads: int = 1
    jobs_per_gpu: int = 1
    compile: str = "auto"

    def runtime(self, **kw: Any) -> Runtime:
        from prunestudy.training.runtime import Runtime

        start_torch(self.threads)
        return Runtime.pick(self.device, self.jobs_per_gpu, self.compile, **kw)

    def load_data(self, rt: Runtime) -> Dataset | Batches:
        """The data: digits and CIFAR in memory on the device; ImageNet as a source of decoded batches."""
        from prunestudy.training import data

        d = self.data
        options = d.get("imagefolder") if d["name"] == "imagenet" else None
        loaded = data.load(d["name"], d["root"], d["download"], d["val_size"], d["test_size"], d["split_seed"], options)
        return loaded.to(rt.device)

    def augment(self) -> Augment:
        from prunestudy.training.data import Augment

        return Augment(**self.data["augment"])

    def base_spec(self, model: dict | None = None) -> ArchSpec:
        """The experiment's large network (or ``model``'s), from the model options and the dataset's shape."""
        from prunestudy.io.config import base_spec

        return base_spec(self.model if model is None else model, self.data)


@contextmanager
def data_parallel(device: str, processes: int) -> Iterator[None]:
    """The job's process group (:mod:`prunestudy.training.distributed`), refused unless the job was started as
    the ``processes`` the config asks for (``gpu.per_job``): a job started alone that should have been
    split, or the reverse, would train another network than its config says."""
    from prunestudy.training import distributed

    with distributed.session(device) as launch:
        if launch.world_size != processes:
            raise RuntimeError(
                f"this job runs as {launch.world_size} process(es) but gpu.per_job is {processes}: start it with "
                f"`torchrun --standalone --nproc-per-node {processes}` (the workflow does) or one srun task per GPU"
            )
        yield


def parallel_record(batch_size: int) -> dict[str, int]:
    """What a data-parallel run adds to its resume key and record: its processes and each one's BN batch
    (results depend on both); nothing for one process, so that one-process keys stay what they were."""
    from prunestudy.training import distributed

    n = distributed.world_size()
    return {} if n == 1 else {"processes": n, "bn_batch": batch_size // n}


def write_run(
    out: Path,
    ctx: Context,
    arm: str,
    slot: str | None,
    spec: ArchSpec,
    model: nn.Module,
    result: FitResult,
    rt: Runtime,
    *,
    recipe: dict,
    extra: dict,
    slices: dict,
    seeds: dict,
    inputs: dict,
    mask: dict | None = None,
) -> None:
    """What every trained network leaves: ``model.pt`` and the sealed ``metrics.json``, each saying which run
    it is (the one place a run's record is written). Of a data-parallel job's processes, rank 0 writes."""
    from prunestudy.io.artifacts import save_checkpoint
    from prunestudy.io.records import RunRecord, identity, outputs_beside
    from prunestudy.training import distributed

    if not distributed.is_main():
        return
    ident = identity(ctx.experiment, arm, ctx.seed, slot)
    save_checkpoint(out / "model.pt", {"spec": spec.to_json(), "state": model.state_dict(), "identity": ident})
    RunRecord.for_spec(
        spec,
        mask,
        experiment=ctx.experiment,
        arm=arm,
        seed=ctx.seed,
        derived_seeds=seeds,
        recipe=recipe,
        epochs=recipe["epochs"],
        final_train_loss=result.final_train_loss,
        val_error=result.val_error,
        test_error=result.test_error,
        wall_time_s=result.wall_time_s,
        throughput_img_s=result.images_per_s,
        device=str(rt.device),
        identity=ident,
        **outputs_beside(out / "metrics.json"),
        inputs=inputs,
        runtime=rt.describe(),
        config_hash=config_hash(slices),
        extra={**extra, "history": result.history},
    ).write(out / "metrics.json")
    log.info("done: val error %.4f, test error %.4f", result.val_error, result.test_error)


def check_base(path: str, base: ArchSpec, state: dict, identity: dict, expected_spec: ArchSpec, expected: dict) -> None:
    """The large network a job prunes: the run its config expects (base name with method and regulariser,
    seed), byte for byte the weights that run's record vouches for, of the configured model, and weights
    that fit it."""
    from prunestudy.io.artifacts import expect
    from prunestudy.io.records import check_output
    from prunestudy.pruning.surgery import check_state

    check_output(path, Path(path).with_name("metrics.json"), expected)
    expect(path, "the large network", expected, identity)
    expect(path, "a network of the experiment's model", expected_spec.spec_id, base.spec_id)
    check_state(base, state, path)


def parse_target(text: str) -> float | str:
    """A target as the config gives it: a number (a fraction or a sparsity weight) or a setting's name."""
    try:
        return float(text)
    except ValueError:
        return text
