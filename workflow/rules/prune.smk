# Pruning, for both kinds of method: an iterative method's chained chunks and the trajectory that samples
# every target; a one-shot method's single prune of the large network (or of the long-trained one, the
# blog's control) and its fine-tuning.
rule prune_chunk:
    input:
        chunk_input,
    output:
        state=P.chunk_state(),
        rows=P.chunk_rows(),
        record=P.chunk_record(),
    log:
        P.log("prune", "{experiment}", "seed{seed}", "chunk{chunk}"),
    wildcard_constraints:
        experiment=ITERATIVE_EXPERIMENTS,
    conda:
        ENV
    threads: config["threads"]
    resources:
        **GPU_JOB,
    params:
        **run_params("prune"),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        prune=exp_json("prune"),
        chunk=lambda wc: int(wc.chunk),
        base=lambda wc: canonical(base_identity(wc)),
    shell:
        "prunestudy prune-chunk "
        + RUN
        + " --method {params.method} --prune {params.prune:q} "
        "--chunk {params.chunk} --input {input:q} --base-identity {params.base:q} --out-state {output.state:q} "
        "--out-rows {output.rows:q} --out-record {output.record:q} > {log} 2>&1"


# One job per (iterative experiment, seed) joins its chunk tables and samples every target: the targets
# differ per experiment, so each experiment gets its rule.
for _exp in ITERATIVE_NAMES:

    rule:
        name:
            f"trajectory_{rule_name(_exp)}"
        input:
            lambda wc, e=_exp: [
                P.chunk_rows(experiment=e, seed=wc.seed, chunk=c) for c in chunks(e)
            ],
        output:
            trajectory=P.trajectory(experiment=_exp),
            record=P.trajectory_record(experiment=_exp),
            specs=[P.arch_spec(experiment=_exp, target=t) for t in targets(_exp)],
            metrics=[P.arch_metrics(experiment=_exp, target=t) for t in targets(_exp)],
        log:
            P.log("trajectory", _exp, "seed{seed}"),
        conda:
            ENV
        params:
            **run_params(
                "extract", experiment=_exp, model=canonical(EXPERIMENTS[_exp]["model"])
            ),
            prune=canonical(EXPERIMENTS[_exp]["prune"]),
            targets=" ".join(targets(_exp)),
            dirs=lambda wc, output: " ".join(os.path.dirname(f) for f in output.specs),
        shell:
            "prunestudy trajectory {input:q} "
            + CONTEXT
            + " --out {output.trajectory:q} "
            "--out-record {output.record:q} --prune {params.prune:q} --targets {params.targets} "
            "--arch-dirs {params.dirs} > {log} 2>&1"


ONESHOT_CMD = (
    LAUNCH
    + "prunestudy oneshot --processes {params.processes} "
    + RUN
    + " --target {wildcards.target} --method {params.method} "
    "--prune {params.prune:q} --finetune {params.finetune:q} --base-model {input:q} "
    "--base-identity {params.base:q} --arm {params.arm} --out {params.out:q} > {log} 2>&1"
)


rule oneshot:
    input:
        base_model,
    output:
        spec=P.arch_spec(),
        metrics=P.arch_metrics(),
        model=P.beside(P.arch_metrics(), "model.pt"),
    log:
        P.log("oneshot", "{experiment}", "seed{seed}", "target{target}"),
    wildcard_constraints:
        experiment=STRUCTURED,
    conda:
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params("prune", fits=True),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        prune=exp_json("prune"),
        finetune=exp_json("finetune"),
        arm=arms.PRUNED,
        base=lambda wc: canonical(base_identity(wc)),
        out=subpath(output.spec, parent=True),
    shell:
        ONESHOT_CMD


use rule oneshot as oneshot_masked with:
    output:
        spec=P.arch_spec(),
        metrics=P.arch_metrics(),
        model=P.beside(P.arch_metrics(), "model.pt"),
        mask=P.arch_mask(),
    wildcard_constraints:
        experiment=UNSTRUCTURED,


use rule oneshot as oneshot_long with:
    input:
        f"{P.long_base_dir()}/model.pt",
    output:
        spec=f"{P.long_dir()}/spec.json",
        metrics=f"{P.long_dir()}/metrics.json",
        model=f"{P.long_dir()}/model.pt",
    log:
        P.log("oneshot_long", "{experiment}", "seed{seed}", "target{target}"),
    wildcard_constraints:
        experiment=long_where(STRUCTURED),
    params:
        **run_params("prune", fits=True),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        prune=exp_json("prune"),
        finetune=exp_json("finetune"),
        arm=arms.PRUNED_LONG,
        base=lambda wc: canonical(
            identity(wc.experiment, arms.BASE_LONG, int(wc.seed), None)
        ),
        out=subpath(output.spec, parent=True),


use rule oneshot_long as oneshot_long_masked with:
    output:
        spec=f"{P.long_dir()}/spec.json",
        metrics=f"{P.long_dir()}/metrics.json",
        model=f"{P.long_dir()}/model.pt",
        mask=f"{P.long_dir()}/mask.pt",
    wildcard_constraints:
        experiment=long_where(UNSTRUCTURED),
