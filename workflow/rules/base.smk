ONESHOT_CMD = (
    "prunestudy oneshot --experiment {wildcards.experiment} --seed {wildcards.seed} --target {wildcards.target} "
    "--method {params.method} --data {params.data:q} --model {params.model:q} --prune {params.prune:q} "
    "--finetune {params.finetune:q} "
    "--compile {params.compile} --jobs-per-gpu {resources.jobs_per_gpu} --device {params.device} --threads {params.threads} "
    "--base-model {input:q} --base-identity {params.base:q} --arm {params.arm} --out {params.out:q} > {log} 2>&1"
)


rule train_base:
    output:
        metrics=P.base_metrics(),
        model=P.base_model(),
    log:
        P.log("train_base", "{base}", "seed{seed}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["train"],
        data=slice_json("data"),
        model=base_json("model"),
        regulariser=base_json("regulariser"),
        recipe=slice_json("train"),
        threads=config["threads"],
        compile=COMPILE,
        device=config["device"],
        arm=arms.BASE,
        out=subpath(output.metrics, parent=True),
    shell:
        "prunestudy train --arm {params.arm} --experiment {wildcards.base} --seed {wildcards.seed} "
        "--data {params.data:q} --model {params.model:q} --regulariser {params.regulariser:q} "
        "--recipe {params.recipe:q} --compile {params.compile} --jobs-per-gpu {resources.jobs_per_gpu} "
        "--device {params.device} --threads {params.threads} --out {params.out} > {log} 2>&1"


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
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["prune"],
        data=slice_json("data"),
        model=exp_json("model"),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        prune=exp_json("prune"),
        finetune=exp_json("finetune"),
        threads=config["threads"],
        compile=COMPILE,
        device=config["device"],
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


rule train_long_base:
    input:
        long_sources,
    output:
        metrics=f"{P.long_base_dir()}/metrics.json",
        model=f"{P.long_base_dir()}/model.pt",
    log:
        P.log("train_long_base", "{experiment}", "seed{seed}"),
    wildcard_constraints:
        experiment=LONG,
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["train"],
        data=slice_json("data"),
        model=lambda wc: canonical(
            BASES[BASE_OF[wc.experiment, targets(wc.experiment)[0]]]["model"]
        ),
        regulariser=lambda wc: canonical(
            BASES[BASE_OF[wc.experiment, targets(wc.experiment)[0]]]["regulariser"]
        ),
        recipe=slice_json("train"),
        threads=config["threads"],
        compile=COMPILE,
        scratch_e=slice_json("scratch_e"),
        scratch_b=slice_json("scratch_b"),
        device=config["device"],
        arm=arms.BASE_LONG,
        out=subpath(output.metrics, parent=True),
    shell:
        "prunestudy train --arm {params.arm} --experiment {wildcards.experiment} --seed {wildcards.seed} "
        "--data {params.data:q} --model {params.model:q} --regulariser {params.regulariser:q} "
        "--recipe {params.recipe:q} "
        "--compile {params.compile} --jobs-per-gpu {resources.jobs_per_gpu} --scratch-e {params.scratch_e:q} "
        "--scratch-b {params.scratch_b:q} --long-from {input:q} "
        "--device {params.device} --threads {params.threads} --out {params.out} > {log} 2>&1"


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
        logic=LOGIC["prune"],
        data=slice_json("data"),
        model=exp_json("model"),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        prune=exp_json("prune"),
        finetune=exp_json("finetune"),
        threads=config["threads"],
        compile=COMPILE,
        device=config["device"],
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
