# Quickstart: small HMC ensembles of 2D U(1), 2D phi^4 and 4D SU(2), checked
# against exact results. Reruns when the library version changes.


rule quickstart:
    output:
        md="results/quickstart/summary.md",
        json="results/quickstart/summary.json",
    params:
        version=LQCDML_VERSION,
        n_traj=config.get("quickstart_n_traj", 1000),
    threads: THREADS
    log:
        "results/quickstart/logs/quickstart.log",
    shell:
        "lqcdml quickstart --out results/quickstart --n-traj {params.n_traj} "
        "--threads {threads} > {log} 2>&1"
