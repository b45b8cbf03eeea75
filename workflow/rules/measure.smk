# Observables of every committed configuration of one ensemble replica.


rule measure:
    input:
        config=config_file,
        manifest=f"{EXP}/ensembles/{{ensemble}}/r{{replica}}.json",
    output:
        directory(f"{EXP}/observables/{{ensemble}}/r{{replica}}.zarr"),
    params:
        store=store_path,
        code=MEASURE_CODE,
    threads: JOB_THREADS
    resources:
        gpu=gpu,
        runtime=240,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP}/logs/measure_{{ensemble}}_r{{replica}}.log",
    shell:
        "lqcdml measure --config {input.config:q} --ensemble {wildcards.ensemble:q} "
        "--store {params.store:q} --out {output:q} threads={threads} --gpus {resources.gpu} --progress lines "
        "> {log:q} 2>&1"
