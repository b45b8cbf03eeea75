# lqcdml workflow: compose -> (train) -> generate -> measure -> (estimate) -> analyze (-> report).
#
#   snakemake -c2                                   the quickstart experiment
#   snakemake -c2 --config experiment=ci_tiny       another experiment (conf/experiment/)
#   snakemake -c2 --config 'overrides=["ensembles.u1_2d.theory.beta=2.5"]'
#   snakemake -c2 paper_flow_phi4                   a published study (rules/papers.smk)
#   snakemake -c2 papers --config scale=smoke       all of them, minutes each
#   snakemake --report report.html                  report with the summary and figures
#   snakemake --profile profiles/cluster            on a SLURM cluster
#
# Rules call the `lqcdml` command-line interface; no physics lives here.

from pathlib import Path

from snakemake.utils import min_version

min_version("9.27")


configfile: Path(workflow.basedir) / "conf" / "workflow.yaml"


include: "workflow/rules/config.smk"  # the config against workflow/schemas/, before anything reads it

include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/estimate.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/papers.smk"


rule all:
    input:
        # asked when `all` is the target: --config scale=smoke needs the experiment's smoke file
        lambda wildcards: f"{RESULTS}/{scaled(BASE_EXPERIMENT)}/summary.md",
    default_target: True
