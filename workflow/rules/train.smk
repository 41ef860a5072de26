# Every network trained from scratch is one call of `prunestudy train`; the rules differ only in their
# outputs and their per-arm options, built by `flags`: `flags` holds what comes from the config and the
# wildcards, `sources` the paths of the inputs. Snakemake records no param that reads `input`, so a config
# value must never hide in `sources`, or changing it would rerun nothing.
TRAIN_CMD = (
    LAUNCH
    + "prunestudy train --processes {params.processes} --arm {params.arm} "
    + RUN
    + " --recipe {params.recipe:q} {params.flags} {params.sources} "
    "--out {params.out:q} > {log} 2>&1"
)


rule train_base:
    output:
        metrics=P.base_metrics(),
        model=P.base_model(),
        init=P.base_init(),
    log:
        P.log("train_base", "{base}", "seed{seed}"),
    conda:
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params(
            "train", model=base_json("model"), experiment=lambda wc: wc.base, fits=True
        ),
        arm=arms.BASE,
        recipe=slice_json("train"),
        flags=lambda wc: flags(regulariser=BASES[wc.base]["regulariser"]),
        sources="",
        out=subpath(output.metrics, parent=True),
    shell:
        TRAIN_CMD


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
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params(
            "train",
            model=lambda wc: canonical(BASES[base_of(wc)]["model"]),
            fits=True,
        ),
        arm=arms.BASE_LONG,
        recipe=slice_json("train"),
        flags=lambda wc: flags(
            regulariser=BASES[base_of(wc)]["regulariser"],
            scratch_e=config["scratch_e"],
            scratch_b=config["scratch_b"],
        ),
        sources=lambda wc, input: flags(long_from=list(input)),
        out=subpath(output.metrics, parent=True),
    shell:
        TRAIN_CMD


rule scratch:
    input:
        unpack(pruned_source),
    output:
        P.scratch_metrics(),
        model=P.beside(P.scratch_metrics(), "model.pt"),
    log:
        P.log("scratch", "{experiment}", "{regime}", "target{target}", "seed{seed}"),
    conda:
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params("train", fits=True),
        arm=lambda wc: arms.SCRATCH[wc.regime],
        recipe=slice_json("train"),
        flags=lambda wc: flags(
            scratch_e=config["scratch_e"],
            scratch_b=config["scratch_b"] if wc.regime == "B" else None,
            source_expect=source_expect(wc.experiment, wc.seed, wc.target),
            slot=wc.target,
        ),
        sources=lambda wc, input: flags(
            **{"mask" if input.source.endswith(".pt") else "arch": input.source},
            source_record=input.record,
        ),
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule lottery:
    input:
        unpack(lottery_sources),
    output:
        P.lottery_metrics(),
        model=P.beside(P.lottery_metrics(), "model.pt"),
    log:
        P.log(
            "lottery",
            "{experiment}",
            "{arm}",
            "lr{lr}",
            "target{target}",
            "seed{seed}",
        ),
    wildcard_constraints:
        experiment=LOTTERY,
        arm="|".join(arms.LOTTERY),
    conda:
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params("train", fits=True),
        arm=lambda wc: wc.arm,
        recipe=slice_json("train"),
        flags=lambda wc: flags(
            scratch_e=config["scratch_e"],
            source_expect=source_expect(wc.experiment, wc.seed, wc.target),
            lr=wc.lr,
            init_expect=base_identity(wc) if wc.arm == arms.WINNING_TICKET else None,
            slot=paths.at_lr(wc.target, wc.lr),
        ),
        sources=lambda wc, input: flags(
            **{"mask" if input.source.endswith(".pt") else "arch": input.source},
            source_record=input.record,
            init=input.get("init"),
        ),
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule family:
    output:
        P.family_metrics(),
        model=P.beside(P.family_metrics(), "model.pt"),
    log:
        P.log("family", "{experiment}", "{arm}", "{member}", "seed{seed}"),
    wildcard_constraints:
        arm="|".join(arms.MEMBER_FAMILIES),
    conda:
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params("train", fits=True),
        arm=lambda wc: wc.arm,
        recipe=slice_json("train"),
        flags=lambda wc: flags(member=wc.member, slot=wc.member),
        sources="",
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD


rule scaled:
    input:
        unpack(scaled_source),
    output:
        P.family_metrics(arm=arms.SCALED),
        model=P.beside(P.family_metrics(arm=arms.SCALED), "model.pt"),
    log:
        P.log("family", "{experiment}", arms.SCALED, "{member}", "seed{seed}"),
    conda:
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params("train", fits=True),
        arm=arms.SCALED,
        recipe=slice_json("train"),
        flags=lambda wc: flags(
            source_expect=source_expect(wc.experiment, *scaled_origin(wc.experiment)),
            member=wc.member,
            slot=wc.member,
        ),
        sources=lambda wc, input: flags(arch=input.source, source_record=input.record),
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
        ENV
    threads: FIT_THREADS
    resources:
        **FIT_JOB,
    params:
        **run_params("train", fits=True),
        arm=lambda wc: wc.guide,
        recipe=slice_json("train"),
        flags=lambda wc: flags(
            source_expect=[source_expect(wc.experiment, s, wc.target) for s in SEEDS],
            slot=wc.target,
        ),
        sources=lambda wc, input: flags(
            guide=list(input.sources), source_record=list(input.records)
        ),
        out=subpath(output[0], parent=True),
    shell:
        TRAIN_CMD
