# Compose each experiment's config once, then one generate job per ensemble replica.
# The ensemble store is not a declared output (Snakemake would delete it before a
# rerun): a killed or timed-out job, rerun, continues from its last commit. The
# declared output is a small manifest written when the chain reaches its length.


localrules:
    compose_config,


rule compose_config:
    input:
        # every Hydra file: an edited experiment, theory or sampler file recomposes; the
        # resolved YAML is compared by checksum, so only real changes rerun the jobs below
        root=CONF_ROOT,
        groups=CONF_FILES,
    output:
        f"{EXP}/config.yaml",
    params:
        overrides=compose_overrides,
        conf=lambda wildcards, input: str(Path(input.root).parent),
        code=COMPOSE_CODE,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP}/logs/compose_config.log",
    shell:
        # every value quoted ({x:q}); the overrides after `--`, so that none is read as an option
        "lqcdml compose --config-dir {params.conf:q} --out {output:q} "
        "-- +experiment={wildcards.experiment:q} {params.overrides:q} > {log:q} 2>&1"


rule generate:
    input:
        unpack(generate_inputs),
    output:
        manifest=f"{EXP}/ensembles/{{ensemble}}/r{{replica}}.json",
    params:
        store=store_path,
        model=model_args,
        start=start_store_args,
        code=GENERATE_CODE,
    threads: JOB_THREADS
    resources:
        gpu=gpu,
        runtime=720,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP}/logs/generate_{{ensemble}}_r{{replica}}.log",
    shell:
        "lqcdml generate --config {input.config:q} --ensemble {wildcards.ensemble:q} "
        "--replica {wildcards.replica:q} --store {params.store:q} --manifest {output.manifest:q} "
        "{params.model:q} {params.start:q} threads={threads} --gpus {resources.gpu} --progress lines > {log:q} 2>&1"
