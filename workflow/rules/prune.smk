rule prune_chunk:
    input:
        chunk_input,
    output:
        state=f"{R}/prune/seed{{seed}}/chunk{{chunk}}.state.pt",
        rows=f"{R}/prune/seed{{seed}}/chunk{{chunk}}.csv",
    log:
        f"{R}/logs/prune/seed{{seed}}/chunk{{chunk}}.log",
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["prune"],
        data=slice_json("data"),
        model=slice_json("model"),
        prune=slice_json("prune"),
        device=config["device"],
        chunk=lambda wc: int(wc.chunk),
    shell:
        "prunestudy prune-chunk --seed {wildcards.seed} --chunk {params.chunk} --data {params.data:q} "
        "--model {params.model:q} --prune {params.prune:q} --device {params.device} --threads {threads} "
        "--input {input:q} --out-state {output.state:q} --out-rows {output.rows:q} > {log} 2>&1"


rule trajectory:
    input:
        lambda wc: expand(
            f"{R}/prune/seed{{seed}}/chunk{{chunk}}.csv", seed=wc.seed, chunk=CHUNKS
        ),
    output:
        f"{R}/prune/seed{{seed}}/trajectory.csv",
    log:
        f"{R}/logs/trajectory/seed{{seed}}.log",
    conda:
        "../envs/prunestudy.yaml"
    params:
        logic=LOGIC["prune"],
    shell:
        "prunestudy trajectory {input:q} --out {output:q} > {log} 2>&1"


rule extract_arch:
    input:
        f"{R}/prune/seed{{seed}}/trajectory.csv",
    output:
        spec=f"{R}/arch/seed{{seed}}/budget{{budget}}/spec.json",
        metrics=f"{R}/arch/seed{{seed}}/budget{{budget}}/metrics.json",
    log:
        f"{R}/logs/extract/seed{{seed}}/budget{{budget}}.log",
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    params:
        logic=LOGIC["extract"],
        data=slice_json("data"),
        model=slice_json("model"),
        prune=slice_json("prune"),
        latency=slice_json("latency"),
        device=config["device"],
        out=subpath(output.spec, parent=True),
    shell:
        "prunestudy extract --seed {wildcards.seed} --budget {wildcards.budget} --data {params.data:q} "
        "--model {params.model:q} --prune {params.prune:q} --latency {params.latency:q} "
        "--device {params.device} --threads {threads} --trajectory {input:q} --out {params.out:q} > {log} 2>&1"
