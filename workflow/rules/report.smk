# The Snakemake report: `snakemake --report report.html` (or report.zip). It holds
# the outputs marked with report() in the analyze rule: the summary table and, for
# every observable, its Monte Carlo history, autocorrelation function and histogram.


report: "../report/workflow.rst"
