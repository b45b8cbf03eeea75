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
        "lqcdml compose +experiment={wildcards.experiment} {params.overrides} "
        "--config-dir {params.conf} --out {output} > {log} 2>&1"


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
        "lqcdml generate --config {input.config} --ensemble {wildcards.ensemble} "
        "--replica {wildcards.replica} --store {params.store} --manifest {output.manifest} {params.model} {params.start} "
        "threads={threads} --gpus {resources.gpu} --progress lines > {log} 2>&1"
