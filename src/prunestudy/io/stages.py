"""Logic version of each workflow stage: the code-change policy.

Snakemake reruns a job when its ``params`` change, and every rule passes its stage's number below as a
param. Refactoring or reformatting the library therefore retrains nothing; a change that alters what a
stage computes bumps that stage's number here, which reruns that stage and everything downstream of it.
"""

LOGIC_VERSIONS: dict[str, int] = {
    # 2: channels_last on every device and the projection as subsample + 1x1 (rounding-level changes,
    # and exact gradients where oneDNN#6035 was hit; see models.py)
    "train": 2,  # train_base, scratch, family, scaled
    "prune": 2,  # prune_chunk, trajectory
    "extract": 1,  # extract_arch
    "latency": 1,  # latency (one job per experiment, alone on its device)
    # 3: claims decided per seed (one-sided t-tests against the margin both ways, Holm over both directions of
    # every claim), seed-level units and descriptive per-target tables, the calibration job
    "analysis": 3,  # collect, compare, claims, calibrate, figures
}
