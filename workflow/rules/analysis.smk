rule collect:
    input:
        run_metrics(),
    output:
        report(
            f"{R}/runs.csv",
            caption="../report/runs.rst",
            category="3. Tables",
            labels={"table": "runs (one row per trained network)"},
        ),
    log:
        f"{R}/logs/collect.log",
    conda:
        "../envs/prunestudy.yaml"
    params:
        logic=LOGIC["analysis"],
    shell:
        "prunestudy collect {input:q} --out {output:q} > {log} 2>&1"


rule compare:
    input:
        runs=f"{R}/runs.csv",
        references=REFERENCES,
    output:
        expand(
            f"{R}/tables/{{table}}.{{ext}}",
            table=TABLES,
            ext=["csv", "md", "tex"],
        ),
        [
            report(
                f"{R}/tables/{t}.html",
                caption=f"../report/{t}.rst",
                category="1. Claims" if t == "claims" else "3. Tables",
                labels={"table": t},
            )
            for t in TABLES
        ],
    log:
        f"{R}/logs/compare.log",
    conda:
        "../envs/prunestudy.yaml"
    params:
        logic=LOGIC["analysis"],
        analysis=slice_json("analysis"),
        data=slice_json("data"),
        model=slice_json("model"),
        out=subpath(output[0], parent=True),
    shell:
        "prunestudy compare --runs {input.runs:q} --analysis {params.analysis:q} --data {params.data:q} "
        "--model {params.model:q} --out-dir {params.out:q} > {log} 2>&1"


rule figures:
    input:
        runs=f"{R}/runs.csv",
        trajectories=expand(f"{R}/prune/seed{{seed}}/trajectory.csv", seed=SEEDS),
    output:
        [f"{R}/figures/{f}.pdf" for f in FIGURES],
        [
            report(
                f"{R}/figures/{f}.png",
                caption=f"../report/{f}.rst",
                category="2. Figures",
                labels={"figure": f},
            )
            for f in FIGURES
        ],
    log:
        f"{R}/logs/figures.log",
    conda:
        "../envs/prunestudy.yaml"
    params:
        logic=LOGIC["analysis"],
        out=subpath(output[0], parent=True),
    shell:
        "prunestudy figures --runs {input.runs:q} --trajectories {input.trajectories:q} "
        "--out-dir {params.out:q} > {log} 2>&1"
