# Every retraining arm is one call of `prunestudy train`; the arms differ only in what they pass.
TRAIN_CMD = (
    "prunestudy train --arm {params.arm} --seed {wildcards.seed} --data {params.data:q} "
    "--model {params.model:q} --recipe {params.recipe:q} --latency {params.latency:q} "
    "--scratch-e {params.scratch_e:q} --scratch-b {params.scratch_b:q} {params.extra} "
    "--device {params.device} --threads {threads} --out {params.out:q} > {log} 2>&1"
)


rule scratch:
    input:
        f"{R}/arch/seed{{seed}}/budget{{budget}}/spec.json",
    output:
        f"{R}/scratch/{{regime}}/budget{{budget}}/seed{{seed}}/metrics.json",
    log:
        f"{R}/logs/scratch/{{regime}}/budget{{budget}}/seed{{seed}}.log",
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["train"],
        arm=lambda wc: f"scratch-{wc.regime}",
        data=slice_json("data"),
        model=slice_json("model"),
        recipe=slice_json("train"),
        latency=slice_json("latency"),
        scratch_e=slice_json("scratch_e"),
        scratch_b=lambda wc: slice_json("scratch_b") if wc.regime == "B" else "{}",
        extra=lambda wc, input: f"--arch {input[0]} --member-of {wc.budget}",
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule family:
    output:
        f"{R}/family/{{kind}}/{{member}}/seed{{seed}}/metrics.json",
    log:
        f"{R}/logs/family/{{kind}}/{{member}}/seed{{seed}}.log",
    wildcard_constraints:
        kind="width|bottleneck",
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["train"],
        arm=lambda wc: wc.kind,
        data=slice_json("data"),
        model=slice_json("model"),
        recipe=slice_json("train"),
        latency=slice_json("latency"),
        scratch_e="{}",
        scratch_b="{}",
        extra=lambda wc: f"--member {wc.member} --member-of {wc.member}",
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule scaled:
    input:
        SCALED_SOURCE,
    output:
        f"{R}/family/scaled/{{member}}/seed{{seed}}/metrics.json",
    log:
        f"{R}/logs/family/scaled/{{member}}/seed{{seed}}.log",
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["train"],
        arm="scaled",
        data=slice_json("data"),
        model=slice_json("model"),
        recipe=slice_json("train"),
        latency=slice_json("latency"),
        scratch_e="{}",
        scratch_b="{}",
        extra=lambda wc, input: f"--arch {input[0]} --member {wc.member} --member-of {wc.member}",
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD
