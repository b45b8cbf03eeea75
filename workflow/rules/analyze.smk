# Errors, tau_int, exact values: the summary table and figures of the experiment.


rule analyze:
    input:
        config=f"{EXP_DIR}/config.yaml",
        observables=observable_stores,
        manifests=manifests,
        estimates=estimates,
    output:
        summary=f"{EXP_DIR}/summary.md",
        table=report(
            f"{EXP_DIR}/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        figures=report(
            directory(f"{EXP_DIR}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        code=ANALYZE_CODE,
        out=lambda wildcards, output: str(Path(output.summary).parent),
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP_DIR}/logs/analyze.log",
    shell:
        "lqcdml analyze --config {input.config} --obs {input.observables} "
        "--manifests {input.manifests} --estimates {input.estimates} --out {params.out} > {log} 2>&1"
