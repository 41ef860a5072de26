rule train_base:
    output:
        metrics=f"{R}/base/seed{{seed}}/metrics.json",
        model=f"{R}/base/seed{{seed}}/model.pt",
    params:
        data=slice_json("data"),
        model=slice_json("model"),
        recipe=slice_json("train"),
        latency=slice_json("latency"),
        device=config["device"],
        out=subpath(output.metrics, parent=True),
    log:
        f"{R}/logs/train_base/seed{{seed}}.log",
    threads: config["threads"]
    resources:
        gpu=GPU,
    shell:
        "prunestudy train --arm base --seed {wildcards.seed} --data {params.data:q} "
        "--model {params.model:q} --recipe {params.recipe:q} --latency {params.latency:q} "
        "--device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"
