# prunestudy: base training -> Fisher pruning trajectory -> sampled architectures -> every retraining
# arm -> statistics, figures and report. The DAG is static: every target comes from config.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/retrain.smk"
include: "workflow/rules/analysis.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
