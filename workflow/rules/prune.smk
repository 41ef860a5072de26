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
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["prune"],
        data=slice_json("data"),
        model=exp_json("model"),
        prune=exp_json("prune"),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        device=config["device"],
        threads=config["threads"],
        chunk=lambda wc: int(wc.chunk),
        base=lambda wc: canonical(base_identity(wc)),
    shell:
        "prunestudy prune-chunk --experiment {wildcards.experiment} --method {params.method} --seed {wildcards.seed} "
        "--chunk {params.chunk} --data {params.data:q} --model {params.model:q} --prune {params.prune:q} "
        "--device {params.device} --threads {params.threads} --jobs-per-gpu {resources.jobs_per_gpu} "
        "--input {input:q} --base-identity {params.base:q} --out-state {output.state:q} --out-rows {output.rows:q} "
        "--out-record {output.record:q} > {log} 2>&1"


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
            "../envs/prunestudy.yaml"
        params:
            logic=LOGIC["extract"],
            data=slice_json("data"),
            model=canonical(EXPERIMENTS[_exp]["model"]),
            prune=canonical(EXPERIMENTS[_exp]["prune"]),
            experiment=_exp,
            budgets=" ".join(targets(_exp)),
            dirs=lambda wc, output: " ".join(os.path.dirname(f) for f in output.specs),
        shell:
            "prunestudy trajectory {input:q} --out {output.trajectory:q} --out-record {output.record:q} "
            "--experiment {params.experiment} "
            "--seed {wildcards.seed} --data {params.data:q} --model {params.model:q} --prune {params.prune:q} "
            "--budgets {params.budgets} --arch-dirs {params.dirs} > {log} 2>&1"
