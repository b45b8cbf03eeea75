# Errors, tau_int, exact values: the summary table, the comparison with published or exact
# values, and the figures of the experiment.


rule analyze:
    input:
        config=config_file,
        observables=observable_stores,
        manifests=manifests,
        estimates=estimates,
    output:
        summary=f"{EXP}/summary.md",
        table=report(
            f"{EXP}/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
        comparison=report(
            f"{EXP}/comparison.csv",
            caption="../report/comparison.rst",
            category="Comparison",
        ),
        figures=report(
            directory(f"{EXP}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            # rules/report.smk: one category per kind of figure, one subcategory per ensemble
            category=lambda wildcards: figure_category(wildcards.name),
            subcategory=lambda wildcards: figure_subcategory(wildcards.name),
            labels=lambda wildcards: figure_labels(wildcards.name),
        ),
    params:
        code=ANALYZE_CODE,
        out=lambda wildcards, output: str(Path(output.summary).parent),
    conda:
        "../envs/lqcdml.yaml"
    log:
        f"{EXP}/logs/analyze.log",
    shell:
        "lqcdml analyze --config {input.config:q} --obs {input.observables:q} "
        "--manifests {input.manifests:q} --estimates {input.estimates:q} --out {params.out:q} > {log:q} 2>&1"
