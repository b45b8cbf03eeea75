# Cheaper measurements without bias (estimator.kind of an ensemble, conf/estimator/):
#   bias_corrected:  measure_expensive computes the expensive tr D^-n on the labelled
#                    configurations of the split only (all of them when the estimator scans
#                    its (r_lb, r_tr) grid); estimate trains the regressors on the cheap
#                    features of `measure` and writes every estimator beside the plain one.
#   control_variate: estimate trains the Schwinger-Dyson control variates on the first
#                    chains of the ensemble store and estimates on the others.


rule measure_expensive:
    input:
        config=config_file,
        manifest=f"{EXP}/ensembles/{{ensemble}}/r{{replica}}.json",
    output:
        directory(f"{EXP}/expensive/{{ensemble}}/r{{replica}}.zarr"),
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
        f"{EXP}/logs/measure_expensive_{{ensemble}}_r{{replica}}.log",
    shell:
        "lqcdml measure --expensive --config {input.config:q} --ensemble {wildcards.ensemble:q} "
        "--store {params.store:q} --out {output:q} threads={threads} --gpus {resources.gpu} --progress lines "
        "> {log:q} 2>&1"


rule estimate:
    input:
        unpack(estimate_inputs),
    output:
        f"{EXP}/estimates/{{ensemble}}.json",
    params:
        args=estimate_args,
        code=ESTIMATE_CODE,
    threads: JOB_THREADS
    resources:
        gpu=gpu,
        runtime=240,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP}/logs/estimate_{{ensemble}}.log",
    shell:
        "lqcdml estimate --config {input.config:q} --ensemble {wildcards.ensemble:q} "
        "{params.args:q} "
        "--out {output:q} threads={threads} --gpus {resources.gpu} > {log:q} 2>&1"
