"""The summary's notes and tables beside the main one: agreement with references, ensembles of
the same theory compared, the sampling cost, and the SLHMC acceptance against ``m_eff``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import cast

from .experiment import ExperimentView
from .references import kl_per_plaquette
from .summary import SAMPLER_DIAGNOSTICS, Row, equal_to_rounding

__all__ = [
    "agreement_lines",
    "consistency_lines",
    "acceptance_scan",
    "cost_lines",
    "cost_observable",
    "COST_OBSERVABLE",
]

#: the observable whose autocorrelation sets the cost of an independent sample
COST_OBSERVABLE = {"phi4": "abs_magnetization", "u1": "topological_charge", "su": "plaquette"}


def cost_observable(theory: str, observables: Sequence[str]) -> str:
    """The observable whose ``tau_int`` prices an independent sample: the topological charge after
    the longest gradient flow where one was measured (``flow_charge[flow_time=t]``, the slowest
    mode), else the theory's ``COST_OBSERVABLE``."""
    flowed = [o for o in observables if o.startswith("flow_charge[flow_time=")]
    if flowed:
        return max(flowed, key=lambda o: float(o.removeprefix("flow_charge[flow_time=").rstrip("]")))
    return COST_OBSERVABLE[theory]


def agreement_lines(rows: Sequence[Row]) -> list[str]:
    """Per ensemble: how many estimates agree with their exact value or reference (|pull| < 3)."""
    lines = []
    for ensemble in sorted({r.ensemble for r in rows}):
        checked = [r for r in rows if r.ensemble == ensemble and r.pull is not None]
        if not checked:
            continue
        # checked: rows with a pull (a property, so not narrowed by the filter above)
        good = [r for r in checked if abs(cast(float, r.pull)) < 3]
        bad = ", ".join(f"{r.observable} ({r.pull:+.1f} sigma)" for r in checked if abs(cast(float, r.pull)) >= 3)
        lines.append(
            f"- `{ensemble}`: {len(good)} of {len(checked)} compared values within 3 sigma"
            + (f"; off: {bad}" if bad else "")
        )
    return ["", "Agreement with exact values and references:", "", *lines] if lines else []


def consistency_lines(experiment: ExperimentView, rows: Sequence[Row]) -> list[str]:
    """Ensembles of the same theory (different samplers): their common observables compared in
    units of the combined error (``Row.comparison_error``); the samplers' own diagnostics are not."""
    ens = experiment.ensembles
    names = sorted({r.ensemble for r in rows if r.ensemble in ens})
    lines = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if ens[a].theory != ens[b].theory:
                continue
            if (
                _has_hmc_twin(experiment, a, names)
                and _has_hmc_twin(experiment, b, names)
                and not (ens[a].reference or ens[b].reference)
            ):
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


def _has_hmc_twin(experiment: ExperimentView, name: str, names: list[str]) -> bool:
    """Whether another ensemble of ``name``'s theory is sampled by HMC."""
    ens = experiment.ensembles
    return any(n != name and ens[n].reference and ens[n].theory == ens[name].theory for n in names)


def acceptance_scan(experiment: ExperimentView, rows: Sequence[Row]) -> dict[str, list[tuple[float, float, float]]]:
    """SLHMC acceptance against ``m_eff`` per kind of effective action (no net, each model
    kind), where a kind has ensembles at two or more ``m_eff``."""
    points = defaultdict(list)
    for r in rows:
        ens = experiment.ensembles.get(r.ensemble)
        if r.observable != "acceptance" or ens is None or "m_eff" not in ens.sampler_options:
            continue
        label = ens.action_label
        points[label].append((float(ens.sampler_options["m_eff"]), r.value, r.error))
    return {k: v for k, v in points.items() if len({p[0] for p in v}) > 1}


def cost_lines(experiment: ExperimentView, rows: Sequence[Row], manifests: list[dict]) -> list[str]:
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
        "| fresh acceptance | KL(q‖p) / plaquette |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ens_name in sorted(generated):
        ens = experiment.ensembles.get(ens_name)
        if ens is None:
            continue
        jobs = generated[ens_name]
        # whole chains where the store kept its wall time, else the last run's part
        done = (
            sum(j["n_committed"] if j.get("seconds_total") else j["n_committed"] - j["resumed_from"] for j in jobs)
            * ens.n_chains
        )
        seconds = sum(j.get("seconds_total") or j["seconds"] for j in jobs)
        acc = sum(j["acceptance"] for j in jobs) / len(jobs)
        obs = cost_observable(ens.theory["name"], [r.observable for r in rows if r.ensemble == ens_name])
        tau = next((r.tau_int for r in rows if r.ensemble == ens_name and r.observable == obs), None)
        per_conf = seconds / done if done else None
        per_indep = per_conf * max(2 * tau, 1.0) if (per_conf is not None and tau is not None) else None
        t = trained.get(ens_name)
        fresh = (t or {}).get("fresh") or {}
        cg = _cg_per_trajectory(jobs)
        cg_text = "" if cg is None else f"{cg[0] + cg[1]:.0f} ({cg[0]:.0f} + {cg[1]:.0f})"
        cg_indep = None if (cg is None or tau is None) else (cg[0] + cg[1]) * ens.save_every * max(2 * tau, 1.0)
        lines.append(
            f"| {ens_name} | {ens.sampler} | {acc:.3f} | {obs} | {_num(tau, '.2f')} | {_num(per_conf, '.3g')} "
            f"| {_num(per_indep, '.3g')} | {cg_text} | {_num(cg_indep, '.3g')} | {_num(t and t['seconds'], '.0f')} "
            f"| {_num(fresh.get('ess'), '.3f')} | {_num(fresh.get('acceptance') or (t or {}).get('final_acceptance'), '.3f')} "
            f"| {_num(_kl_per_plaquette(ens.theory, t), '.4f')} |"
        )
    return lines


def _kl_per_plaquette(theory: dict, trained: dict | None) -> float | None:
    """``KL(q || p)`` per plaquette at the end of training where ``ln Z`` is exact; else ``None``."""
    if not trained or "final_loss" not in trained:
        return None
    return kl_per_plaquette(theory, trained["final_loss"])


def _cg_per_trajectory(jobs: list[dict]) -> tuple[float, float] | None:
    """Mean CG iterations per trajectory of the batched chains, (MD, accept/reject), over
    the replicas whose manifests carry them (one solve serves every chain of a batch)."""
    counts = [j["counters_per_trajectory"] for j in jobs if "cg_md" in (j.get("counters_per_trajectory") or {})]
    if not counts:
        return None
    return (sum(c["cg_md"] for c in counts) / len(counts), sum(c["cg_metropolis"] for c in counts) / len(counts))


def _num(x, fmt: str) -> str:
    return "" if x is None else format(x, fmt)
