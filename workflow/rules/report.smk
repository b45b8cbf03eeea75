# The Snakemake report: `snakemake <target> --report results/<experiment>/report.html`, one
# self-contained HTML page per experiment (every figure and table embedded as a data: URI;
# report.zip works too). It holds the outputs marked with report() in the analyze rule:
# the summary table, the comparison with published or exact values (both shown as tables in
# their description) and the figures, grouped by the lambdas below: one category per kind
# of figure, one subcategory per ensemble, one row per observable.


import re


report: "../report/workflow.rst"


# How the analyze rule's report() files the figures (`lqcdml analyze`: analysis/plots.py,
# analysis/estimates.py): <ensemble>__<observable>__<kind>.png or <ensemble>__<kind>.png
# under the category of its kind and the subcategory of its ensemble, one row per
# observable; figures of several ensembles at once (plot_losses, plot_acceptance_scan)
# under "all ensembles". Lambdas, not functions: `snakemake --lint` wants no functions
# beside rules. One label a row: with two, Snakemake may turn the second into a toggle
# that hides half the rows.
_FIGURE_KINDS = {  # kind -> (category, the row where the name has no observable)
    "history": ("Figures - histories", "history"),
    "autocorrelation": ("Figures - autocorrelation functions", "autocorrelation"),
    "histogram": ("Figures - histograms", "histogram"),
    "control_variate_training": ("Figures - training curves", "control-variate training"),
    "training": ("Figures - training curves", "training"),
    "scan_sigma_ratio": ("Figures - heat maps", "sigma_ML / sigma_full"),
    "scan_check": ("Figures - heat maps", "central-value check"),
}
_FIGURE_NAME = re.compile(rf"(?P<ensemble>.+?)__(?:(?P<observable>.+)__)?(?P<kind>{'|'.join(_FIGURE_KINDS)})")
_ALL_ENSEMBLES = "all ensembles"

figure_category = lambda name: (
    _FIGURE_KINDS[m["kind"]][0] if (m := _FIGURE_NAME.fullmatch(name))
    else "Figures - training curves" if name.startswith("training_loss")
    else "Figures - acceptance" if name.startswith("acceptance_vs")
    else "Figures - other"
)
figure_subcategory = lambda name: (
    m["ensemble"] if (m := _FIGURE_NAME.fullmatch(name)) else _ALL_ENSEMBLES
)
figure_labels = lambda name: (
    {"observable": m["observable"]} if (m := _FIGURE_NAME.fullmatch(name)) and m["observable"]
    else {"figure": _FIGURE_KINDS[m["kind"]][1]} if m
    else {"figure": f"losses at m_eff = {name.removeprefix('training_loss_m_eff_')}"}
    if name.startswith("training_loss_m_eff_")
    else {"figure": "acceptance against m_eff"} if name == "acceptance_vs_m_eff"
    else {"figure": name}
)


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
        "lqcdml devices --out {output:q} > {log:q} 2>&1"
