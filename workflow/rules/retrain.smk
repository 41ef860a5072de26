# Every retraining arm is one call of `prunestudy train`; the arms differ only in what they pass.
TRAIN_CMD = (
    "prunestudy train --arm {params.arm} --experiment {wildcards.experiment} --seed {wildcards.seed} "
    "--data {params.data:q} --model {params.model:q} --recipe {params.recipe:q} "
    "--compile {params.compile} --jobs-per-gpu {resources.jobs_per_gpu} "
    "--scratch-e {params.scratch_e:q} --scratch-b {params.scratch_b:q} {params.extra} --source-expect {params.expect:q} "
    "--device {params.device} --threads {params.threads} --out {params.out:q} > {log} 2>&1"
)


rule scratch:
    input:
        unpack(pruned_source),
    output:
        P.scratch_metrics(),
        model=P.beside(P.scratch_metrics(), "model.pt"),
    log:
        P.log("scratch", "{experiment}", "{regime}", "target{target}", "seed{seed}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["train"],
        arm=lambda wc: arms.SCRATCH[wc.regime],
        data=slice_json("data"),
        model=exp_json("model"),
        recipe=slice_json("train"),
        threads=config["threads"],
        compile=COMPILE,
        scratch_e=slice_json("scratch_e"),
        scratch_b=lambda wc: slice_json("scratch_b") if wc.regime == "B" else "{}",
        extra=lambda wc, input: f"--{'mask' if input.source.endswith('.pt') else 'arch'} {input.source} "
        f"--source-record {input.record} --member-of {wc.target}",
        expect=lambda wc: source_expect(wc.experiment, wc.seed, wc.target),
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule family:
    output:
        P.family_metrics(),
        model=P.beside(P.family_metrics(), "model.pt"),
    log:
        P.log("family", "{experiment}", "{kind}", "{member}", "seed{seed}"),
    wildcard_constraints:
        kind="|".join(arms.MEMBER_FAMILIES),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["train"],
        arm=lambda wc: wc.kind,
        data=slice_json("data"),
        model=exp_json("model"),
        recipe=slice_json("train"),
        threads=config["threads"],
        compile=COMPILE,
        scratch_e="{}",
        scratch_b="{}",
        extra=lambda wc: f"--member {wc.member} --member-of {wc.member}",
        expect="null",
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule scaled:
    input:
        unpack(scaled_source),
    output:
        P.family_metrics(kind=arms.SCALED),
        model=P.beside(P.family_metrics(kind=arms.SCALED), "model.pt"),
    log:
        P.log("family", "{experiment}", arms.SCALED, "{member}", "seed{seed}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["train"],
        arm=arms.SCALED,
        data=slice_json("data"),
        model=exp_json("model"),
        recipe=slice_json("train"),
        threads=config["threads"],
        compile=COMPILE,
        scratch_e="{}",
        scratch_b="{}",
        extra=lambda wc, input: f"--arch {input.source} --source-record {input.record} "
        f"--member {wc.member} --member-of {wc.member}",
        expect=lambda wc: source_expect(wc.experiment, *scaled_origin(wc.experiment)),
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule guide:
    input:
        unpack(guide_sources),
    output:
        P.guide_metrics(),
        model=P.beside(P.guide_metrics(), "model.pt"),
    log:
        P.log("guide", "{experiment}", "{guide}", "target{target}", "seed{seed}"),
    conda:
        "../envs/prunestudy.yaml"
    threads: config["threads"]
    resources:
        gpu=GPU,
        jobs_per_gpu=JOBS_PER_GPU,
    params:
        logic=LOGIC["train"],
        arm=lambda wc: wc.guide,
        data=slice_json("data"),
        model=exp_json("model"),
        recipe=slice_json("train"),
        threads=config["threads"],
        compile=COMPILE,
        scratch_e="{}",
        scratch_b="{}",
        extra=lambda wc, input: f"--guide {' '.join(input.sources)} --source-record {' '.join(input.records)} "
        f"--member-of {wc.target}",
        expect=lambda wc: canonical(
            [json.loads(source_expect(wc.experiment, s, wc.target)) for s in SEEDS]
        ),
        device=config["device"],
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD
