rule train_base:
    output:
        metrics=f"{R}/base/seed{{seed}}/metrics.json",
        model=f"{R}/base/seed{{seed}}/model.pt",
    log:
        f"{R}/logs/train_base/seed{{seed}}.log",
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
    params:
        logic=LOGIC["train"],
        data=slice_json("data"),
        model=slice_json("model"),
        recipe=slice_json("train"),
        latency=slice_json("latency"),
        device=config["device"],
        out=subpath(output.metrics, parent=True),
    shell:
        "prunestudy train --arm base --seed {wildcards.seed} --data {params.data:q} "
        "--model {params.model:q} --recipe {params.recipe:q} --latency {params.latency:q} "
        "--device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"
