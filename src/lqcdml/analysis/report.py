"""The summary of an experiment (``summary.md``, ``summary.csv``, ``comparison.csv``) and its
figures (``figures/``), from its observable stores, manifests and estimates, loaded and
checked by the caller (``driver.analyze``).

``summary.md`` opens, for a paper experiment, with the published numbers beside ours
(``papers``), then the notes (how errors are made, drifting chains, disagreeing replicas,
agreement with references, ensembles of one theory compared), the table of every
observable, the sampling cost, the estimator tables and the provenance.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import xarray as xr

from .estimates import EstimateReport, estimate_lines, plot_estimates
from .experiment import ExperimentView
from .papers import comparison_lines, comparison_table, write_comparison_csv
from .plots import plot_acceptance_scan, plot_losses, plot_series, plot_training
from .references import flow_log_z, kl_per_plaquette
from .replicas import P_MIN
from .report_provenance import provenance_lines
from .report_tables import acceptance_scan, agreement_lines, consistency_lines, cost_lines
from .summary import Row, drift_lines, replica_lines, scalar_series, summarize_ensemble, thermalized, write_tables

__all__ = ["write_report"]


def write_report(
    experiment: ExperimentView,
    datasets: Mapping[str, xr.Dataset],
    out_dir: Path,
    manifests: Sequence[dict] = (),
    estimates: Sequence[dict] = (),
    figures: bool = True,
    config_path: Path | None = None,
    log: Callable[[str], None] | None = None,
    estimators: Mapping[str, EstimateReport] | None = None,
) -> list[Row]:
    """Write the summary and figures into ``out_dir``; returns the summary rows.

    ``datasets``: each ensemble's observables, its replicas combined; ``manifests`` (of
    generate and train) add the sampling-cost table and the training figures; ``estimates``
    (of ``lqcdml estimate``) the tables of the improved estimators; ``config_path``: the
    resolved config the experiment was analysed with; ``log`` gets the drift and replica
    warnings; ``estimators``: the kind of each estimate by name (its tables and figures)."""
    rows = []
    for ensemble in sorted(datasets):
        ds = datasets[ensemble]
        rows += summarize_ensemble(ensemble, ds)
        if figures:
            for label, da in scalar_series(thermalized(ds)):
                plot_series(da, ensemble, label, out_dir / "figures")
    notes = _notes(experiment, rows, log or (lambda line: None))
    manifests, results = list(manifests), list(estimates)
    if figures:
        _training_figures(experiment, rows, manifests, out_dir / "figures")
    appendix = cost_lines(experiment, rows, manifests)
    theories = experiment.theories()
    if results:
        kinds = estimators or {}
        appendix = [*appendix, "", *estimate_lines(results, theories, kinds)]
        if figures:
            for res in results:
                plot_estimates(res, out_dir / "figures", kinds)
    histories = {m["ensemble"]: m["history"] for m in manifests if "checkpoint" in m and m.get("history")}
    comparison = comparison_table(experiment.name, rows, results, theories, histories)
    notes = [*comparison_lines(experiment.name, comparison), *notes]
    appendix = [*appendix, "", *provenance_lines(experiment, manifests, results, config_path)]
    write_tables(rows, out_dir, f"lqcdml summary: {experiment.name}", notes, appendix)
    write_comparison_csv(out_dir / "comparison.csv", comparison)
    return rows


def _notes(experiment: ExperimentView, rows: list[Row], log: Callable[[str], None]) -> list[str]:
    """The notes above the table; each drift and replica warning also goes to ``log``."""
    notes = [
        f"Experiment `{experiment.name}`. Errors and tau_int (in units of stored configurations) by "
        "the Gamma method (pyerrors), each chain a replica; with 8 or more chains the error is the larger "
        "of that and the error the spread of the chains' means implies (a mode slower than the Gamma "
        "method's window is in the spread); exp(-dH) also takes its block means' error (heavy tails); "
        "thermalisation cut per ensemble "
        "(chain.n_therm). The pull compares with the exact value or reference "
        "(errors combined).",
    ]
    drifting, scattered = drift_lines(rows), replica_lines(rows)
    for line in drifting + scattered:
        log(line[2:])
    notes += [
        "",
        "The drift column compares the first quarter with the last half of each kept chain (z, with the "
        "error of the last half: the Gamma method's, with 8 or more chains at least their spread's); "
        "|z| > 3 flags a thermalisation cut that was too short, and so do window means of the kept chain "
        "that differ beyond their errors (5 windows, errors from the spread of the chains' window means "
        "where there are 8 or more chains; p < 0.001). It also flags replicas whose means scatter "
        "far beyond the Gamma-method error, which sees only the fluctuations within each chain "
        f"(chi2 of the replica means, p < {P_MIN:g}).",
        *drifting,
        *scattered,
    ]
    return notes + agreement_lines(rows) + consistency_lines(experiment, rows)


def _training_figures(experiment: ExperimentView, rows: list[Row], manifests: list[dict], folder: Path) -> None:
    """Each trained model's history (a 2D flow's as KL(q||p) per plaquette), SLHMC networks side by side at equal ``m_eff``, and the
    SLHMC acceptance against ``m_eff``."""
    smearing: defaultdict[float | None, dict[str, dict]] = defaultdict(dict)  # SLHMC networks by m_eff
    for m in manifests:
        if "checkpoint" in m and m.get("history"):
            ens = experiment.ensembles.get(m["ensemble"])
            kl = None  # a 2D flow's loss shown as KL(q || p) per plaquette where ln Z is exact
            if ens is not None and "ess" in m["history"] and flow_log_z(ens.theory) is not None:
                kl = functools.partial(kl_per_plaquette, ens.theory)
            plot_training(m["history"], m["ensemble"], folder, kl)
            if "ess" not in m["history"] and ens is not None:
                smearing[ens.sampler_options.get("m_eff")][m["ensemble"]] = m["history"]
    for m_eff, histories in smearing.items():
        if len(histories) > 1:  # side by side at equal training steps
            plot_losses(histories, folder, f"training_loss_m_eff_{m_eff:g}")
    scan = acceptance_scan(experiment, rows)
    if scan:
        plot_acceptance_scan(scan, folder)
