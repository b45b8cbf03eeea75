# Observables of every committed configuration of one ensemble replica.


rule measure:
    input:
        config=f"{EXP_DIR}/config.yaml",
        manifest=f"{EXP_DIR}/ensembles/{{ensemble}}/r{{replica}}.json",
    output:
        directory(f"{EXP_DIR}/observables/{{ensemble}}/r{{replica}}.zarr"),
    params:
        store=lambda wc: f"{EXP_DIR}/ensembles/{wc.ensemble}/r{wc.replica}.zarr",
        code=MEASURE_CODE,
    wildcard_constraints:
        replica=r"\d\d",
    threads: JOB_THREADS
    resources:
        gpu=GPU,
        runtime=240,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP_DIR}/logs/measure_{{ensemble}}_r{{replica}}.log",
    shell:
        "lqcdml measure --config {input.config} --ensemble {wildcards.ensemble} "
        "--store {params.store} --out {output} threads={threads} --progress lines > {log} 2>&1"
