"""Every artefact path of a study, for the workflow rules and the library alike.

Each function returns a path under ``root`` (``<results>/<study>``). Called with no keyword it
gives the Snakemake template (``{experiment}``, ``{seed}``, ...); called with values it gives the
concrete path. Nothing reads meaning back out of a path: what a file is, it says inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# an experiment's tables: what `prunestudy compare` writes from its runs, then its rows of the study's claims
COMPARE_TABLES = ("errors", "target_stats", "paired", "families", "units", "consistency_stats", "references")
TABLES = ("claims", *COMPARE_TABLES)
# the study's own tables and figure: every claim decided together, and how often that decision errs
CALIBRATION_TABLES = ("calibration", "power")
STUDY_FIGURES = ("operating_characteristics",)
FIGURES = (
    "error_vs_params",
    "error_vs_flops",
    "error_vs_latency",
    "target_arms",
    "channel_profile",
    "consistency",
)
TRAJECTORY_FIGURES = ("trajectory_heatmap",)  # iterative methods only

# The report: the study's claims first, then one section per experiment (its claims table first, the
# published numbers beside it); the resolved config closes the workflow page. Snakemake sorts sections
# and subsections by name.
STUDY_SECTION = "1. Study"
REPORT_SECTIONS = {
    "claims": "1. Claims",
    "references": "2. Published numbers beside reproduced ones",
    "errors": "3. Test error per target and arm",
    "figures": "4. Figures",
    "target_stats": "5. Statistics",
    "paired": "5. Statistics",
    "families": "5. Statistics",
    "units": "5. Statistics",
    "consistency_stats": "5. Statistics",
    "runs": "6. Every trained network",
}


def report_section(experiment: str = "{experiment}") -> str:
    """An experiment's section of the report (a Snakemake report category)."""
    return f"2. Experiment {experiment}"  # no colon: docutils would read it as a link target


def figures(iterative: bool) -> tuple[str, ...]:
    """The figures of an experiment: an iterative method's add its trajectories'."""
    return FIGURES + (TRAJECTORY_FIGURES if iterative else ())


def target_label(value: float | str) -> str:
    """How a target, budget or family member is written in a path (and so must be unique)."""
    return value if isinstance(value, str) else f"{value:g}"


LR_MARK = "@lr"  # a lottery run's slot is its target at its learning rate; its arm's label in the tables, too


def at_lr(name: str, lr: float | str) -> str:
    """A name (a lottery run's target, or its arm in the analysis) at one learning rate: ``0.5@lr0.01``."""
    return f"{name}{LR_MARK}{target_label(float(lr))}"


def split_lr(name: str) -> tuple[str, float | None]:
    """The name before :func:`at_lr` and its learning rate (None where it has none)."""
    head, _, lr = name.partition(LR_MARK)
    return head, float(lr) if lr else None


def chunk_label(chunk: int) -> str:
    return f"{chunk:03d}"


@dataclass(frozen=True)
class StudyPaths:
    root: str

    def _exp(self, experiment: str) -> str:
        return f"{self.root}/{experiment}"

    def base_dir(self, base: str = "{base}", seed: object = "{seed}") -> str:
        """A large network, shared by every experiment that prunes the same plainly trained model."""
        return f"{self.root}/bases/{base}/seed{seed}"

    def base_model(self, **wc: object) -> str:
        return f"{self.base_dir(**wc)}/model.pt"

    def base_metrics(self, **wc: object) -> str:
        return f"{self.base_dir(**wc)}/metrics.json"

    def base_init(self, **wc: object) -> str:
        """A large network's initial weights (epoch 0): the winning tickets start from them."""
        return f"{self.base_dir(**wc)}/init.pt"

    def prune_dir(self, experiment: str = "{experiment}", seed: object = "{seed}") -> str:
        return f"{self._exp(experiment)}/prune/seed{seed}"

    def chunk_state(self, experiment: str = "{experiment}", seed: object = "{seed}", chunk: str = "{chunk}") -> str:
        return f"{self.prune_dir(experiment, seed)}/chunk{chunk}.state.pt"

    def chunk_rows(self, experiment: str = "{experiment}", seed: object = "{seed}", chunk: str = "{chunk}") -> str:
        return f"{self.prune_dir(experiment, seed)}/chunk{chunk}.csv"

    def chunk_record(self, experiment: str = "{experiment}", seed: object = "{seed}", chunk: str = "{chunk}") -> str:
        """What a pruning chunk wrote (its state, its rows and every step checkpoint), with their hashes."""
        return f"{self.prune_dir(experiment, seed)}/chunk{chunk}.json"

    def trajectory(self, **wc: object) -> str:
        return f"{self.prune_dir(**wc)}/trajectory.csv"

    def trajectory_record(self, **wc: object) -> str:
        """The trajectory's record: which experiment and seed, and the hash of ``trajectory.csv``."""
        return f"{self.prune_dir(**wc)}/trajectory.json"

    def arch_dir(self, experiment: str = "{experiment}", seed: object = "{seed}", target: str = "{target}") -> str:
        return f"{self._exp(experiment)}/arch/seed{seed}/target{target}"

    def arch_spec(self, **wc: object) -> str:
        return f"{self.arch_dir(**wc)}/spec.json"

    def arch_metrics(self, **wc: object) -> str:
        return f"{self.arch_dir(**wc)}/metrics.json"

    def arch_mask(self, **wc: object) -> str:
        """Unstructured pruning: the mask that travels beside the (unchanged) spec."""
        return f"{self.arch_dir(**wc)}/mask.pt"

    def long_base_dir(self, experiment: str = "{experiment}", seed: object = "{seed}") -> str:
        """The blog's control: the large network trained for the experiment's longest Scratch-B budget."""
        return f"{self._exp(experiment)}/long/base/seed{seed}"

    def long_dir(self, experiment: str = "{experiment}", seed: object = "{seed}", target: str = "{target}") -> str:
        """A network pruned from the long-trained large network and fine-tuned (arm pruned-long)."""
        return f"{self._exp(experiment)}/long/seed{seed}/target{target}"

    def scratch_metrics(
        self,
        experiment: str = "{experiment}",
        regime: str = "{regime}",
        target: str = "{target}",
        seed: object = "{seed}",
    ) -> str:
        return self._targeted(experiment, "scratch", regime, target, seed)

    def family_metrics(
        self, experiment: str = "{experiment}", arm: str = "{arm}", member: str = "{member}", seed: object = "{seed}"
    ) -> str:
        """A member of a family (arm width, bottleneck or scaled) trained from scratch."""
        return f"{self._exp(experiment)}/family/{arm}/{member}/seed{seed}/metrics.json"

    def guide_metrics(
        self,
        experiment: str = "{experiment}",
        guide: str = "{guide}",
        target: str = "{target}",
        seed: object = "{seed}",
    ) -> str:
        """A guided architecture (or its uniform control) of one target, trained from scratch."""
        return self._targeted(experiment, "guided", guide, target, seed)

    def lottery_metrics(
        self,
        experiment: str = "{experiment}",
        arm: str = "{arm}",
        lr: str = "{lr}",
        target: str = "{target}",
        seed: object = "{seed}",
    ) -> str:
        """A lottery-ticket arm (winning ticket or random initialisation) of one target at one learning rate."""
        return self._targeted(experiment, "lottery", f"{arm}/lr{lr}", target, seed)

    def _targeted(self, experiment: str, folder: str, arm: str, target: str, seed: object) -> str:
        """A network trained from scratch for one target: ``<experiment>/<folder>/<arm>/target<t>/seed<s>``."""
        return f"{self._exp(experiment)}/{folder}/{arm}/target{target}/seed{seed}/metrics.json"

    def runs(self, experiment: str = "{experiment}") -> str:
        return f"{self._exp(experiment)}/runs.csv"

    def runs_html(self, experiment: str = "{experiment}") -> str:
        """The runs table as the report shows it."""
        return f"{self._exp(experiment)}/runs.html"

    def latency(self, experiment: str = "{experiment}") -> str:
        """Latency of every distinct network of the experiment, measured by one job alone on its device."""
        return f"{self._exp(experiment)}/latency.csv"

    def table(self, experiment: str = "{experiment}", table: str = "{table}", ext: str = "csv") -> str:
        return f"{self._exp(experiment)}/tables/{table}.{ext}"

    def figure(self, experiment: str = "{experiment}", figure: str = "{figure}", ext: str = "png") -> str:
        return f"{self._exp(experiment)}/figures/{figure}.{ext}"

    def study_table(self, table: str = "{table}", ext: str = "csv") -> str:
        """A table of the whole study (the claims of every experiment, Holm over all of them)."""
        return f"{self.root}/tables/{table}.{ext}"

    def study_figure(self, figure: str = "{figure}", ext: str = "png") -> str:
        """A figure of the whole study (the verdicts' operating characteristics)."""
        return f"{self.root}/figures/{figure}.{ext}"

    @staticmethod
    def beside(record: str, name: str) -> str:
        """A file a job writes next to its record (``model.pt`` beside ``metrics.json``)."""
        return f"{record.rsplit('/', 1)[0]}/{name}"

    def log(self, stage: str, *parts: str) -> str:
        return "/".join([self.root, "logs", stage, *parts]) + ".log"


def steps_dir(prune_dir: str | Path) -> Path:
    """Where a trajectory's per-step checkpoints live (beside its chunk files)."""
    return Path(prune_dir) / "steps"


def step_checkpoint(steps: str | Path, step: int) -> Path:
    """A prune step's checkpoint inside a trajectory's ``steps_dir``."""
    return Path(steps) / f"step{step:05d}.pt"


def chunk_resume(prune_dir: str | Path, chunk: int) -> Path:
    """Resume state of a running chunk: outside the declared outputs, so Snakemake never deletes it."""
    return Path(prune_dir) / ".resume" / f"chunk{chunk_label(chunk)}.pt"


def train_resume(out_dir: str | Path) -> Path:
    return Path(out_dir) / "resume.pt"
