# lqcdml workflow. `snakemake -c2` runs the quickstart experiment.
# Rules call the `lqcdml` command-line interface; no physics lives here.

configfile: "conf/workflow.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/quickstart.smk"


rule all:
    input:
        "results/quickstart/summary.md",
    default_target: True
