# One target per published study: `snakemake -c2 paper_flow_phi4` reruns it from nothing
# and writes results/paper_flow_phi4/summary.md, our numbers beside the published ones;
# `--config scale=smoke` runs the minutes-long version (conf/experiment/<paper>_smoke.yaml,
# results/<paper>_smoke/). `snakemake -c2 papers` runs them all.


for _paper in PAPERS:

    rule:
        name:
            _paper
        input:
            f"{RESULTS}/{scaled(_paper)}/summary.md",


rule papers:
    input:
        [f"{RESULTS}/{scaled(p)}/summary.md" for p in PAPERS],
