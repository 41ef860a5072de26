rule latency:
    input:
        run_metrics,
    output:
        P.latency(),
    log:
        P.log("latency", "{experiment}"),
    conda:
        ENV
    # alone on its device: on CPU it takes every core; on a GPU it claims every slot of one device
    threads: ALL_CORES
    resources:
        **GPU_JOB,
    params:
        logic=LOGIC["latency"],
        latency=slice_json("latency"),
        device=config["device"],
        threads=config["threads"],
    shell:
        "prunestudy latency {input:q} --latency {params.latency:q} --device {params.device} "
        "--threads {params.threads} --jobs-per-gpu {resources.jobs_per_gpu} --out {output:q} > {log} 2>&1"


rule collect:
    input:
        metrics=run_metrics,
        latency=P.latency(),
    output:
        runs=P.runs(),
        html=report(
            P.runs_html(),
            caption="../report/runs.rst",
            category=paths.report_section(),
            subcategory=paths.REPORT_SECTIONS["runs"],
            labels={"table": "runs (one row per trained network)"},
        ),
    log:
        P.log("collect", "{experiment}"),
    conda:
        ENV
    params:
        logic=LOGIC["analysis"],
        expect=run_expect,
    shell:
        "prunestudy collect {input.metrics:q} --latency {input.latency:q} --expect {params.expect:q} "
        "--experiment {wildcards.experiment} "
        "--out {output.runs:q} > {log} 2>&1"


rule compare:
    input:
        runs=P.runs(),
        references=REFERENCES,
    output:
        [
            P.table(table=t, ext=ext)
            for t in paths.COMPARE_TABLES
            for ext in ("csv", "md", "tex")
        ],
        [
            report(
                P.table(table=t, ext="html"),
                caption=f"../report/{t}.rst",
                category=paths.report_section(),
                subcategory=paths.REPORT_SECTIONS[t],
                labels={"table": t},
            )
            for t in paths.COMPARE_TABLES
        ],
    log:
        P.log("compare", "{experiment}"),
    conda:
        ENV
    params:
        logic=LOGIC["analysis"],
        analysis=slice_json("analysis"),
        data=slice_json("data"),
        model=exp_json("model"),
        method=lambda wc: EXPERIMENTS[wc.experiment]["method"],
        out=subpath(output[0], parent=True),
    shell:
        "prunestudy compare --runs {input.runs:q} --analysis {params.analysis:q} --data {params.data:q} "
        "--model {params.model:q} --method {params.method} --out-dir {params.out:q} > {log} 2>&1"


rule claims:
    input:
        units=[P.table(experiment=e, table="units") for e in EXPERIMENTS],
    output:
        [P.study_table(table="claims", ext=ext) for ext in ("md", "tex")],
        report(
            P.study_table(table="claims", ext="html"),
            caption="../report/study_claims.rst",
            category=paths.STUDY_SECTION,
            subcategory="Claims of every experiment",
            labels={"table": "claims (Holm over the study)"},
        ),
        [
            P.table(experiment=e, table="claims", ext=ext)
            for e in EXPERIMENTS
            for ext in ("csv", "md", "tex")
        ],
        [
            report(
                P.table(experiment=e, table="claims", ext="html"),
                caption="../report/claims.rst",
                category=paths.report_section(e),
                subcategory=paths.REPORT_SECTIONS["claims"],
                labels={"table": "claims"},
            )
            for e in EXPERIMENTS
        ],
        study=P.study_table(table="claims"),
    log:
        P.log("claims", "study"),
    conda:
        ENV
    params:
        logic=LOGIC["analysis"],
        analysis=slice_json("analysis"),
        data=slice_json("data"),
        experiments=list(EXPERIMENTS),
        trained=canonical(TRAINED),
        per_experiment=[P.table(experiment=e, table="claims") for e in EXPERIMENTS],
    shell:
        "prunestudy claims --experiments {params.experiments:q} --units {input.units:q} "
        "--trained {params.trained:q} --analysis {params.analysis:q} --data {params.data:q} "
        "--out {output.study:q} --per-experiment {params.per_experiment:q} > {log} 2>&1"


rule calibrate:
    input:
        claims=P.study_table(table="claims"),
    output:
        [
            P.study_table(table=t, ext=ext)
            for t in paths.CALIBRATION_TABLES
            for ext in ("csv", "md", "tex")
        ],
        [
            report(
                P.study_table(table=t, ext="html"),
                caption=f"../report/{t}.rst",
                category=paths.STUDY_SECTION,
                subcategory="How often the verdicts err",
                labels={"table": t},
            )
            for t in paths.CALIBRATION_TABLES
        ],
        [P.study_figure(figure=f, ext="pdf") for f in paths.STUDY_FIGURES],
        [
            report(
                P.study_figure(figure=f),
                caption=f"../report/{f}.rst",
                category=paths.STUDY_SECTION,
                subcategory="How often the verdicts err",
                labels={"figure": f},
            )
            for f in paths.STUDY_FIGURES
        ],
    log:
        P.log("calibrate", "study"),
    conda:
        ENV
    params:
        logic=LOGIC["analysis"],
        analysis=slice_json("analysis"),
        data=slice_json("data"),
        experiments=slice_json("experiments"),
        out=subpath(output[0], ancestor=2),
    shell:
        "prunestudy calibrate --claims {input.claims:q} --experiments {params.experiments:q} "
        "--analysis {params.analysis:q} --data {params.data:q} --out-dir {params.out:q} > {log} 2>&1"


rule figures:
    input:
        runs=P.runs(),
        trajectories=lambda wc: [
            P.trajectory(experiment=wc.experiment, seed=s) for s in SEEDS
        ],
    output:
        [P.figure(figure=f, ext="pdf") for f in paths.figures(iterative=True)],
        [
            report(
                P.figure(figure=f),
                caption=f"../report/{f}.rst",
                category=paths.report_section(),
                subcategory=paths.REPORT_SECTIONS["figures"],
                labels={"figure": f},
            )
            for f in paths.figures(iterative=True)
        ],
    log:
        P.log("figures", "{experiment}"),
    wildcard_constraints:
        experiment=ITERATIVE_EXPERIMENTS,
    conda:
        ENV
    params:
        logic=LOGIC["analysis"],
        seeds=" ".join(map(str, SEEDS)),
        out=subpath(output[0], parent=True),
    shell:
        "prunestudy figures --runs {input.runs:q} --trajectories {input.trajectories:q} "
        "--seeds {params.seeds} --out-dir {params.out:q} > {log} 2>&1"


rule figures_oneshot:
    input:
        runs=P.runs(),
    output:
        [P.figure(figure=f, ext="pdf") for f in paths.figures(iterative=False)],
        [
            report(
                P.figure(figure=f),
                caption=f"../report/{f}.rst",
                category=paths.report_section(),
                subcategory=paths.REPORT_SECTIONS["figures"],
                labels={"figure": f},
            )
            for f in paths.figures(iterative=False)
        ],
    log:
        P.log("figures", "{experiment}"),
    wildcard_constraints:
        experiment="|".join(ONESHOT_NAMES) or "(?!)",
    conda:
        ENV
    params:
        logic=LOGIC["analysis"],
        out=subpath(output[0], parent=True),
    shell:
        "prunestudy figures --runs {input.runs:q} --out-dir {params.out:q} > {log} 2>&1"
