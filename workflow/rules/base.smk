rule train_base:
    output:
        metrics=P.base_metrics(),
        model=P.base_model(),
    log:
        P.log("train_base", "{experiment}", "seed{seed}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["train"],
        data=slice_json("data"),
        model=exp_json("model"),
        recipe=slice_json("train"),
        latency=slice_json("latency"),
        device=config["device"],
        arm=arms.BASE,
        out=subpath(output.metrics, parent=True),
    shell:
        "prunestudy train --arm {params.arm} --experiment {wildcards.experiment} --seed {wildcards.seed} "
        "--data {params.data:q} --model {params.model:q} --recipe {params.recipe:q} --latency {params.latency:q} "
        "--device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"
