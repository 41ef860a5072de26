"""Logic version of each workflow stage: the code-change policy.

Snakemake reruns a job when its ``params`` change, and every rule passes its stage's number below as a
param. Refactoring or reformatting the library therefore retrains nothing; a change that alters what a
stage computes bumps that stage's number here, which reruns that stage and everything downstream of it.
"""

LOGIC_VERSIONS: dict[str, int] = {
    "train": 1,  # train_base, scratch, family, scaled
    "prune": 1,  # prune_chunk, trajectory
    "extract": 1,  # extract_arch
    "analysis": 1,  # collect, compare, figures
}
