# lqcdml workflow: compose -> (train) -> generate -> measure -> (estimate) -> analyze (-> report).
#
#   snakemake -c2                                   the quickstart experiment
#   snakemake -c2 --config experiment=ci_tiny       another experiment (conf/experiment/)
#   snakemake -c2 --config 'overrides=["ensembles.u1_2d.theory.beta=2.5"]'
#   snakemake --report report.html                  report with the summary and figures
#   snakemake --profile profiles/cluster            on a SLURM cluster
#
# Rules call the `lqcdml` command-line interface; no physics lives here.

from pathlib import Path


configfile: Path(workflow.basedir) / "conf" / "workflow.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/estimate.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{RESULTS}/{EXPERIMENT}/summary.md",
    default_target: True
