# prunestudy: large networks -> pruning (an iterative trajectory, or one-shot) -> every retraining arm ->
# statistics, claims, figures and report. The DAG is static: every target comes from config.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/analysis.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
