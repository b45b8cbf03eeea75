"""``lqcdml analyze``: tables and figures of an experiment from its observable stores."""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

from ..analysis.papers import comparison_lines, comparison_table, write_comparison_csv
from ..analysis.plots import plot_acceptance_scan, plot_losses, plot_series, plot_training
from ..analysis.replicas import P_MIN
from ..analysis.summary import (
    SAMPLER_DIAGNOSTICS,
    drift_lines,
    equal_to_rounding,
    replica_lines,
    scalar_series,
    summarize_ensemble,
    thermalized,
    write_tables,
)
from ..config import SAMPLERS, RootConfig, to_container
from ..config.records import job_provenance
from ..provenance import git_commit, package_versions
from ..store import StoreError, combine_replicas, read_observables

__all__ = ["analyze"]


def analyze(
    cfg: RootConfig, observable_stores: list[Path], out_dir: Path, figures: bool = True,
    manifests: list[Path] = (), estimates: list[Path] = (), config_path: Path | None = None,
) -> list:
    """Summary (``summary.md``, ``summary.csv``, ``comparison.csv``) and figures (``figures/``) in ``out_dir``.

    ``manifests`` (of generate and train) add the sampling-cost table; ``estimates`` (of
    ``lqcdml estimate``) the tables of the improved estimators beside the plain ones. A paper
    experiment's summary opens with the published numbers beside ours; every summary ends
    with its provenance (``config_path``: the resolved config it was analysed with).
    """
    by_ensemble = defaultdict(list)
    for path in observable_stores:
        ds = read_observables(path)
        if ds.attrs.get("experiment") != cfg.experiment:
            raise StoreError(
                f"observable store {str(path)!r} belongs to experiment {ds.attrs.get('experiment')!r}; "
                f"allowed: observable stores of experiment {cfg.experiment!r}"
            )
        by_ensemble[ds.attrs["ensemble"]].append(ds)
    rows = []
    for ensemble in sorted(by_ensemble):
        if ensemble not in cfg.ensembles:
            raise StoreError(f"observable stores of ensemble {ensemble!r}, which experiment "
                             f"{cfg.experiment!r} does not define; allowed: {', '.join(sorted(cfg.ensembles))}")
        ds = combine_replicas(by_ensemble[ensemble])
        rows += summarize_ensemble(ensemble, ds)
        if figures:
            for label, da in scalar_series(thermalized(ds)):
                plot_series(da, ensemble, label, out_dir / "figures")
    notes = [
        f"Experiment `{cfg.experiment}`. Errors and tau_int (in units of stored configurations) by "
        "the Gamma method (pyerrors), each chain a replica; with 8 or more chains the error is the larger "
        "of that and the error the spread of the chains' means implies (a mode slower than the Gamma "
        "method's window is in the spread); exp(-dH) also takes its block means' error (heavy tails); "
        "thermalisation cut per ensemble "
        "(chain.n_therm). The pull compares with the exact value or reference "
        "(errors combined).",
    ]
    drifting, scattered = drift_lines(rows), replica_lines(rows)
    for line in drifting + scattered:  # the log
        print(f"lqcdml analyze: {line[2:]}", file=sys.stderr)
    notes += ["", "The drift column compares the first quarter with the last half of each kept chain (z, with the "
              "error of the last half: the Gamma method's, with 8 or more chains at least their spread's); "
              "|z| > 3 flags a thermalisation cut that was too short, and so do window means of the kept chain "
              "that differ beyond their errors (5 windows, errors from the spread of the chains' window means "
              "where there are 8 or more chains; p < 0.001). It also flags replicas whose means scatter "
              "far beyond the Gamma-method error, which sees only the fluctuations within each chain "
              f"(chi2 of the replica means, p < {P_MIN:g}).", *drifting, *scattered]
    notes += agreement_lines(rows)
    notes += consistency_lines(cfg, rows)
    loaded = [json.loads(Path(m).read_text()) for m in manifests]
    if figures:
        smearing = defaultdict(dict)  # SLHMC networks by m_eff
        for m in loaded:
            if "checkpoint" in m and m.get("history"):
                plot_training(m["history"], m["ensemble"], out_dir / "figures")
                ens = cfg.ensembles.get(m["ensemble"])
                if "ess" not in m["history"] and ens is not None:
                    smearing[ens.sampler.options.get("m_eff")][m["ensemble"]] = m["history"]
        for m_eff, histories in smearing.items():
            if len(histories) > 1:  # side by side at equal training steps
                plot_losses(histories, out_dir / "figures", f"training_loss_m_eff_{m_eff:g}")
        scan = acceptance_scan(cfg, rows)
        if scan:
            plot_acceptance_scan(scan, out_dir / "figures")
    appendix = cost_lines(cfg, rows, loaded)
    results = [_estimate(cfg, Path(e)) for e in estimates]
    theories = {name: to_container(e.theory) for name, e in cfg.ensembles.items()}
    if results:
        from ..analysis.estimates import estimate_lines, plot_estimates

        appendix = [*appendix, "", *estimate_lines(results, theories)]
        if figures:
            for res in results:
                plot_estimates(res, out_dir / "figures")
    histories = {m["ensemble"]: m["history"] for m in loaded if "checkpoint" in m and m.get("history")}
    comparison = comparison_table(cfg.experiment, rows, results, theories, histories)
    notes = [*comparison_lines(cfg.experiment, comparison), *notes]
    appendix = [*appendix, "", *provenance_lines(cfg, loaded, results, config_path)]
    write_tables(rows, out_dir, f"lqcdml summary: {cfg.experiment}", notes, appendix)
    write_comparison_csv(out_dir / "comparison.csv", comparison)
    return rows


def provenance_lines(cfg: RootConfig, manifests: list[dict], estimates: list[dict],
                     config_path: Path | None = None) -> list[str]:
    """Markdown: what reproduces these numbers. The resolved config (path and SHA-256), each
    ensemble's chain hash and seeds, device and dtype, and the git commits and package versions
    of the jobs that made the inputs (from their manifests) and of this analysis."""
    lines = ["## Provenance", ""]
    if config_path is not None:
        digest = hashlib.sha256(Path(config_path).read_bytes()).hexdigest()
        lines.append(f"- resolved config: `{config_path}` (SHA-256 {digest[:16]}); device {cfg.device}, dtype {cfg.dtype}")
    for name in sorted(cfg.ensembles):
        rec = job_provenance(cfg, name)
        seeds = ", ".join(f"{k} {v}" for k, v in rec["seeds"].items())
        # a model sampler's chain hash includes the trained model: the generate jobs record it
        sampled = sorted({(m["config_hash"], m["model_digest"]) for m in manifests
                          if m.get("ensemble") == name and "config_hash" in m and "model_digest" in m})
        if sampled:
            chain = "; ".join(f"chain hash {h} (model {d})" for h, d in sampled)
        elif SAMPLERS.lookup(cfg.ensembles[name].sampler.name).needs_model:
            chain = f"chain definition hash {rec['config_hash']} (the chain hash adds the trained model's digest)"
        else:
            chain = f"chain hash {rec['config_hash']}"
        lines.append(f"- `{name}`: {chain}; seeds: {seeds}")
    jobs = [*manifests, *estimates]
    commits = sorted({j["provenance"]["git_commit"] for j in jobs if "provenance" in j})
    versions = [j["provenance"]["versions"] for j in jobs if "provenance" in j]
    here = package_versions()
    if commits:
        lines.append(f"- the jobs' git commits: {', '.join(commits)}")
    other = sorted({f"{k} {v}" for vs in versions for k, v in vs.items() if here.get(k) != v})
    if other:
        lines.append(f"- jobs ran with other package versions than this analysis: {', '.join(other)}")
    lines.append(f"- this analysis: git commit {git_commit()}; " + ", ".join(f"{k} {v}" for k, v in here.items()))
    return lines


def _estimate(cfg: RootConfig, path: Path) -> dict:
    """An estimate JSON of this experiment and of an ensemble it defines (same chain hash)."""
    from ..config import matches_chain

    res = json.loads(path.read_text())
    ens = cfg.ensembles.get(res.get("ensemble"))
    if res.get("experiment") != cfg.experiment or ens is None or not matches_chain(res, ens, cfg.dtype):
        raise StoreError(f"estimate {str(path)!r} was not made for an ensemble of experiment {cfg.experiment!r} "
                         "with this config (experiment, ensemble or chain hash differs)")
    return res


def acceptance_scan(cfg: RootConfig, rows) -> dict[str, list[tuple[float, float, float]]]:
    """SLHMC acceptance against ``m_eff`` per kind of effective action (no net, each model
    kind), where a kind has ensembles at two or more ``m_eff``."""
    points = defaultdict(list)
    for r in rows:
        ens = cfg.ensembles.get(r.ensemble)
        if r.observable != "acceptance" or ens is None or "m_eff" not in ens.sampler.options:
            continue
        label = "no network" if ens.sampler.name == "slhmc_thin" else ens.model.kind
        points[label].append((float(ens.sampler.options["m_eff"]), r.value, r.error))
    return {k: v for k, v in points.items() if len({p[0] for p in v}) > 1}


def consistency_lines(cfg: RootConfig, rows) -> list[str]:
    """Ensembles of the same theory (different samplers): their common observables compared in
    units of the combined error (``Row.comparison_error``); the samplers' own diagnostics are not."""
    names = sorted({r.ensemble for r in rows if r.ensemble in cfg.ensembles})
    lines = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if to_container(cfg.ensembles[a].theory) != to_container(cfg.ensembles[b].theory):
                continue
            if _has_hmc_twin(cfg, a, names) and _has_hmc_twin(cfg, b, names) and \
                    "hmc" not in (cfg.ensembles[a].sampler.name, cfg.ensembles[b].sampler.name):
                continue  # where the theory has an HMC ensemble, each other sampler is compared with it
            va = {r.observable: r for r in rows if r.ensemble == a}
            vb = {r.observable: r for r in rows if r.ensemble == b}
            pulls = []
            for obs in sorted((set(va) & set(vb)) - SAMPLER_DIAGNOSTICS):
                ra, rb = va[obs], vb[obs]
                sigma = (ra.comparison_error**2 + rb.comparison_error**2) ** 0.5
                if sigma > 0 and not equal_to_rounding(ra.value - rb.value, sigma, max(abs(ra.value), abs(rb.value))):
                    spread = " (error from the replica spread)" if ra.replicas_disagree or rb.replicas_disagree else ""
                    pulls.append(f"{obs} {(ra.value - rb.value) / sigma:+.1f}{spread}")
            if pulls:
                lines.append(f"- `{a}` vs `{b}` (same theory), difference in sigma: " + ", ".join(pulls))
    return ["", "Ensembles of the same theory:", "", *lines] if lines else []


def _has_hmc_twin(cfg: RootConfig, name: str, names: list[str]) -> bool:
    """Whether another ensemble of ``name``'s theory is sampled by HMC."""
    theory = to_container(cfg.ensembles[name].theory)
    return any(n != name and cfg.ensembles[n].sampler.name == "hmc"
               and to_container(cfg.ensembles[n].theory) == theory for n in names)


#: the observable whose autocorrelation sets the cost of an independent sample
COST_OBSERVABLE = {"phi4": "abs_magnetization", "u1": "topological_charge", "su": "plaquette"}


def cost_lines(cfg: RootConfig, rows, manifests: list[dict]) -> list[str]:
    """Markdown table: per ensemble acceptance, tau_int, seconds per configuration and per
    independent sample (``2 tau_int`` configurations), and for flows the training."""
    generated, trained = defaultdict(list), {}
    for m in manifests:
        if "checkpoint" in m:
            trained[m["ensemble"]] = m
        elif "store" in m:
            generated[m["ensemble"]].append(m)
    if not generated:
        return []
    lines = [
        "Sampling cost (wall seconds on this run's hardware; per chain-configuration, chains batched "
        "in one tensor; an independent sample costs 2 tau_int configurations; training excluded):",
        "",
        "| ensemble | sampler | acceptance | observable | tau_int | s / configuration | s / independent sample "
        "| CG / trajectory (MD + accept/reject) | CG / independent sample | training s | fresh ESS "
        "| fresh acceptance |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ens_name in sorted(generated):
        ens = cfg.ensembles.get(ens_name)
        if ens is None:
            continue
        jobs = generated[ens_name]
        # whole chains where the store kept its wall time, else the last run's part
        done = sum(j["n_committed"] if j.get("seconds_total") else j["n_committed"] - j["resumed_from"]
                   for j in jobs) * ens.chain.n_chains
        seconds = sum(j.get("seconds_total") or j["seconds"] for j in jobs)
        acc = sum(j["acceptance"] for j in jobs) / len(jobs)
        obs = COST_OBSERVABLE[ens.theory.name]
        tau = next((r.tau_int for r in rows if r.ensemble == ens_name and r.observable == obs), None)
        per_conf = seconds / done if done else None
        per_indep = per_conf * max(2 * tau, 1.0) if (per_conf is not None and tau is not None) else None
        t = trained.get(ens_name)
        fresh = (t or {}).get("fresh") or {}
        cg = _cg_per_trajectory(jobs)
        cg_text = "" if cg is None else f"{cg[0] + cg[1]:.0f} ({cg[0]:.0f} + {cg[1]:.0f})"
        cg_indep = None if (cg is None or tau is None) else (cg[0] + cg[1]) * ens.chain.save_every * max(2 * tau, 1.0)
        lines.append(
            f"| {ens_name} | {ens.sampler.name} | {acc:.3f} | {obs} | {_num(tau, '.2f')} | {_num(per_conf, '.3g')} "
            f"| {_num(per_indep, '.3g')} | {cg_text} | {_num(cg_indep, '.3g')} | {_num(t and t['seconds'], '.0f')} "
            f"| {_num(fresh.get('ess'), '.3f')} | {_num(fresh.get('acceptance') or (t or {}).get('final_acceptance'), '.3f')} |"
        )
    return lines


def _cg_per_trajectory(jobs: list[dict]) -> tuple[float, float] | None:
    """Mean CG iterations per trajectory of the batched chains, (MD, accept/reject), over
    the replicas whose manifests carry them (one solve serves every chain of a batch)."""
    counts = [j["counters_per_trajectory"] for j in jobs
              if "cg_md" in (j.get("counters_per_trajectory") or {})]
    if not counts:
        return None
    return (sum(c["cg_md"] for c in counts) / len(counts), sum(c["cg_metropolis"] for c in counts) / len(counts))


def _num(x, fmt: str) -> str:
    return "" if x is None else format(x, fmt)


def agreement_lines(rows) -> list[str]:
    """Per ensemble: how many estimates agree with their exact value or reference (|pull| < 3)."""
    lines = []
    for ensemble in sorted({r.ensemble for r in rows}):
        checked = [r for r in rows if r.ensemble == ensemble and r.pull is not None]
        if not checked:
            continue
        good = [r for r in checked if abs(r.pull) < 3]
        bad = ", ".join(f"{r.observable} ({r.pull:+.1f} sigma)" for r in checked if abs(r.pull) >= 3)
        lines.append(
            f"- `{ensemble}`: {len(good)} of {len(checked)} compared values within 3 sigma"
            + (f"; off: {bad}" if bad else "")
        )
    return ["", "Agreement with exact values and references:", "", *lines] if lines else []
