# The Snakemake report: `snakemake --report report.html` (or report.zip). It holds
# the outputs marked with report() in the analyze rule: the summary table and, for
# every observable, its Monte Carlo history, autocorrelation function and histogram.


report: "../report/workflow.rst"


# `snakemake gpu_check` (e.g. with --profile cluster): one job that asks for a GPU like the
# GPU rules do and reports what it sees (results/gpu_check.json); on a machine without a
# scheduler it reports the local devices.
rule gpu_check:
    output:
        f"{RESULTS}/gpu_check.json",
    resources:
        gpu=1,
        runtime=5,
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{RESULTS}/logs/gpu_check.log",
    shell:
        "lqcdml devices --out {output} > {log} 2>&1"
