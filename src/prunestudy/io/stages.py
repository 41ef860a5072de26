"""Logic version of each workflow stage: the code-change policy.

Snakemake reruns a job when its ``params`` change, and every rule passes its stage's number below as a
param. Refactoring or reformatting the library therefore retrains nothing; a change that alters what a
stage computes bumps that stage's number here, which reruns that stage and everything downstream of it.
"""

LOGIC_VERSIONS: dict[str, int] = {
    # 2: channels_last on every device and the projection as subsample + 1x1 (rounding-level changes,
    # and exact gradients where oneDNN#6035 was hit; see arch/wrn.py)
    # 3: Scratch-B epochs by int() and milestones in whole numbers; guided architectures per stage
    "train": 3,  # train_base (3: also its initial weights), train_long_base, scratch, family, scaled, guide, lottery
    # 3: SSS's factors revive under the reference's APG step
    "prune": 3,  # prune_chunk, oneshot (and oneshot_masked, oneshot_long, ...)
    "extract": 1,  # trajectory_<experiment>: the trajectory joined and sampled at every target
    "latency": 1,  # latency (one job per experiment, alone on its device)
    # 3: claims decided per seed (one-sided t-tests against the margin both ways, Holm over both directions of
    # every claim), seed-level units and descriptive per-target tables, the calibration job
    # 4: the runs table's lr column; the lottery arms compared per learning rate
    "analysis": 4,  # collect, compare, claims, calibrate, figures
}
