rule prune_chunk:
    input:
        chunk_input,
    output:
        state=P.chunk_state(),
        rows=P.chunk_rows(),
    log:
        P.log("prune", "{experiment}", "seed{seed}", "chunk{chunk}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["prune"],
        data=slice_json("data"),
        model=exp_json("model"),
        prune=exp_json("prune"),
        device=config["device"],
        chunk=lambda wc: int(wc.chunk),
    shell:
        "prunestudy prune-chunk --experiment {wildcards.experiment} --seed {wildcards.seed} "
        "--chunk {params.chunk} --data {params.data:q} --model {params.model:q} --prune {params.prune:q} "
        "--device {params.device} --threads {threads} "
        "--input {input:q} --out-state {output.state:q} --out-rows {output.rows:q} > {log} 2>&1"


rule trajectory:
    input:
        lambda wc: [
            P.chunk_rows(experiment=wc.experiment, seed=wc.seed, chunk=c)
            for c in chunks(wc.experiment)
        ],
    output:
        P.trajectory(),
    log:
        P.log("trajectory", "{experiment}", "seed{seed}"),
    conda:
        "../envs/prunestudy.yaml"
    params:
        logic=LOGIC["prune"],
    shell:
        "prunestudy trajectory {input:q} --out {output:q} > {log} 2>&1"


rule extract_arch:
    input:
        P.trajectory(),
    output:
        spec=P.arch_spec(),
        metrics=P.arch_metrics(),
    log:
        P.log("extract", "{experiment}", "seed{seed}", "target{target}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    params:
        logic=LOGIC["extract"],
        data=slice_json("data"),
        model=exp_json("model"),
        prune=exp_json("prune"),
        latency=slice_json("latency"),
        device=config["device"],
        out=subpath(output.spec, parent=True),
    shell:
        "prunestudy extract --experiment {wildcards.experiment} --seed {wildcards.seed} "
        "--budget {wildcards.target} --data {params.data:q} --model {params.model:q} --prune {params.prune:q} "
        "--latency {params.latency:q} --device {params.device} --threads {threads} "
        "--trajectory {input:q} --out {params.out:q} > {log} 2>&1"
