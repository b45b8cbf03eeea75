"""The SLHMC gain map: SLHMC against the best HMC a production code would run, by volume and
light mass, measured and bounded; prints one JSON document (``--plot`` draws the map).

SU(2), staggered N_f = 4, beta 2.0 (``--colours 3``: SU(3), its ``--beta`` given). Per lattice and light mass ``m``, every sampler from the
same thermalised fields (Hasenbusch HMC), the same chains, float64 and threads, one at a time:

- the baseline: plain HMC (``--plain-steps``) and Hasenbusch HMC with one intermediate mass
  (``--hasenbusch-masses`` above ``m``, ``--outer-steps``, one inner step), the cheapest of
  all by CG iterations per accepted trajectory (``benchmarks/hasenbusch.py``'s measure);
- SLHMC without a network at each ``m_eff`` (``--m-eff``): molecular dynamics on the light
  operator at ``m_eff``, heat bath and Metropolis exact (``slhmc_thin``), and on the
  lightest Hasenbusch ratio of the best split (``slhmc_hasenbusch_thin``);
- the bound on any network: the dense spectrum of ``-H^2`` on ``--spectrum-configs``
  configurations gives the floor of the mismatch's variance that no effective action at
  ``m_eff`` on smeared links goes below (``lqcdml.analysis.slhmc_floor``), its acceptance
  ``erfc(sqrt(floor) / 2)``, and with the CG iterations of the thin sampler (a network adds
  none) the least cost per accepted trajectory a perfect network could reach.

The cost measure is CG iterations per accepted trajectory at trajectory length 1 (the
autocorrelation in trajectories is about the same for exact HMC-type chains of equal length);
the ratio to the baseline is what the issue's target (<= 0.5) is about. Seconds are recorded
beside it. ``--plot a.json b.json ... --out map.png`` draws cost ratio against volume per
mass (measured thin SLHMC and the perfect-network bound) from earlier runs and prints the
cost model (``model``): up to which volume a perfect network could reach half the baseline.

Usage: ``python benchmarks/slhmc_gain.py [--lattices 4 6] [--masses 0.1 0.05 0.02]
[--threads 1] [--quick]`` or ``python benchmarks/slhmc_gain.py --plot run*.json --out map.png``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lqcdml.analysis.slhmc_floor import (
    gaussian_acceptance,
    mismatch_floor,
    modes_below,
    ratio_mismatch_floor,
    sites_at_acceptance,
    thin_field_variance,
)
from lqcdml.lattice import SU
from lqcdml.observables.fermion import staggered_even_spectrum
from lqcdml.samplers.slhmc import slhmc, slhmc_hasenbusch
from lqcdml.theories import ratio_at_mass

sys.path.insert(0, str(Path(__file__).parent))
from hasenbusch import measure  # noqa: E402  (the scan's per-setting figures, one definition)
from slhmc_setup import gauge_action, hasenbusch, header, plain_hmc, pseudofermion, start_fields  # noqa: E402


def point(args, extent: int, mass: float) -> dict:
    """Every sampler at one lattice and light mass (see the module docstring)."""
    group = SU(args.colours)
    gauge, light = gauge_action(args.beta, group), pseudofermion(mass, args.tol, args.md_tol, group)
    heavier = [m for m in args.hasenbusch_masses if m > mass]
    t0 = time.perf_counter()
    therm = hasenbusch(gauge, light, heavier[0], 3, args.gauge_steps)
    fields = start_fields(args.seed, args.chains, extent, group)
    fields, therm_row = measure(therm, fields, args.therm, args.seed + 1)
    configs = [fields]

    baseline = []
    for n in args.plain_steps:
        hmc = plain_hmc(gauge, light, n, args.gauge_steps)
        end, row = measure(hmc, fields, args.trajectories, args.seed + 2)
        baseline.append({"sampler": "hmc", "n_steps": n, **row})
    configs.append(end)
    for m_1 in heavier:
        for n in args.outer_steps:
            hb = hasenbusch(gauge, light, m_1, n, args.gauge_steps)
            end, row = measure(hb, fields, args.trajectories, args.seed + 2)
            baseline.append({"sampler": "hasenbusch", "masses": [m_1], "n_steps": n, **row})
    configs.append(end)
    best = min(baseline, key=lambda r: r["cg_per_accepted"])
    best_split = min((r for r in baseline if r["sampler"] == "hasenbusch"), key=lambda r: r["cg_per_accepted"])
    m_1 = best_split["masses"][0]

    links = torch.cat(configs)[: args.spectrum_configs]
    ts = time.perf_counter()
    mu2 = staggered_even_spectrum(light.operator, links)
    spectrum_seconds = time.perf_counter() - ts

    def against_baseline(row: dict) -> dict:
        return {
            **row,
            "cg_ratio_to_baseline": row["cg_per_accepted"] / best["cg_per_accepted"],
            "seconds_ratio_to_baseline": row["seconds_per_accepted"] / best["seconds_per_accepted"],
        }

    def bound(row: dict, floor: float) -> dict:
        acc = gaussian_acceptance(floor)
        cost = row["cg_per_trajectory"] / max(acc, 1e-300)
        return {
            "floor_var": floor,
            "floor_acceptance": acc,
            "cg_per_accepted": cost,
            "cg_ratio_to_baseline": cost / best["cg_per_accepted"],
        }

    slhmc_rows = []
    for m_eff in (m for m in args.m_eff if m > mass):
        eff = pseudofermion(m_eff, args.tol, args.md_tol, group)
        sampler = slhmc(gauge, [light], [eff], args.slhmc_steps, args.gauge_steps, "omelyan", 1.0)
        _, row = measure(sampler, fields, args.trajectories, args.seed + 3)
        slhmc_rows.append(
            {
                "sampler": "slhmc_thin",
                "m_eff": m_eff,
                "n_steps": args.slhmc_steps,
                **against_baseline(row),
                "thin_field_var": thin_field_variance(mu2, mass, m_eff),
                "modes_below_m_eff": modes_below(mu2, mass, m_eff),
                "perfect_network": bound(row, mismatch_floor(mu2, mass, m_eff)),
            }
        )
        if m_eff < m_1:
            sampler = slhmc_hasenbusch(
                gauge,
                [light],
                [m_1],
                lambda t, m_eff=m_eff: ratio_at_mass(t, m_eff),
                best_split["n_steps"],
                [1],
                args.gauge_steps,
                "omelyan",
                1.0,
            )
            _, row = measure(sampler, fields, args.trajectories, args.seed + 3)
            slhmc_rows.append(
                {
                    "sampler": "slhmc_hasenbusch_thin",
                    "m_eff": m_eff,
                    "masses": [m_1],
                    "n_steps": best_split["n_steps"],
                    **against_baseline(row),
                    "perfect_network": bound(row, ratio_mismatch_floor(mu2, mass, m_eff, m_1)),
                }
            )
    return {
        "lattice": [extent] * 4,
        "sites": extent**4,
        "mass": mass,
        "thermalisation": {"trajectories": args.therm, **therm_row},
        "baseline": baseline,
        "best_baseline": best,
        "slhmc": slhmc_rows,
        "lowest_mu2": float(mu2[:, 0].mean()),
        "spectrum_configurations": int(mu2.shape[0]),
        "spectrum_seconds": spectrum_seconds,
        "wall_seconds": time.perf_counter() - t0,
    }


def model(points: list[dict], target: float) -> list[dict]:
    """Per point and sampler, the cost model: with a perfect network the cost per accepted
    trajectory is ``c / acc(V)``, ``c`` the thin sampler's CG per trajectory over the baseline's
    per accepted trajectory (a network adds no CG; both scale with the volume at fixed
    iteration counts) and ``acc(V) = erfc(sqrt(f V) / 2)``, ``f`` the floor per site. It reaches
    ``target`` only where ``acc >= c / target``, i.e. up to ``sites_at_acceptance(f, c / target)``
    sites (an upper bound: the floor per site of a small box grows towards the thermodynamic
    limit)."""
    rows = []
    for p in points:
        for r in p["slhmc"]:
            pn = r["perfect_network"]
            c = r["cg_per_trajectory"] / p["best_baseline"]["cg_per_accepted"]
            per_site = pn["floor_var"] / p["sites"]
            sites: float | None
            if c >= target:
                sites = 0.0  # not even at acceptance 1
            elif per_site == 0:
                sites = None  # no mode below m_eff on this box: no bound from it
            else:
                sites = sites_at_acceptance(per_site, c / target)
            rows.append(
                {
                    "lattice": p["lattice"],
                    "mass": p["mass"],
                    "sampler": r["sampler"],
                    "m_eff": r["m_eff"],
                    "measured_ratio": r["cg_ratio_to_baseline"],
                    "perfect_network_ratio": pn["cg_ratio_to_baseline"],
                    "per_trajectory_ratio": c,
                    "floor_per_site": per_site,
                    "sites_up_to_which_the_target_is_possible": sites,
                }
            )
    return rows


def fit_growth(points: list[dict], key: str, min_sites: int) -> dict:
    """Least-squares fit ``var = a V^q (m_eff - m)^p`` in logs over the thin sampler's rows on
    lattices of ``min_sites`` or more sites with ``var > 0``; ``key``: ``floor`` (the perfect
    network's mismatch floor) or ``thin`` (the mismatch without a network). The residuals'
    rms is the scatter the two variables leave (the light mass itself, statistics)."""
    rows = [
        (
            p["sites"],
            r["m_eff"] - p["mass"],
            r["perfect_network"]["floor_var"] if key == "floor" else r["thin_field_var"],
        )
        for p in points
        if p["sites"] >= min_sites
        for r in p["slhmc"]
        if r["sampler"] == "slhmc_thin"
    ]
    rows = [r for r in rows if r[2] > 0]
    if len(rows) < 4:
        return {"variance": key, "n_points": len(rows), "fit": None}
    x = np.array([[1.0, math.log(v), math.log(gap)] for v, gap, _ in rows])
    y = np.log([var for _, _, var in rows])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ coef
    dof = len(rows) - 3
    cov = np.linalg.inv(x.T @ x) * (resid @ resid / dof if dof > 0 else float("nan"))
    err = np.sqrt(np.diag(cov))
    return {
        "variance": key,
        "form": "var = a V^q (m_eff - m)^p",
        "min_sites": min_sites,
        "n_points": len(rows),
        "a": math.exp(coef[0]),
        "q_volume": float(coef[1]),
        "q_volume_error": float(err[1]),
        "p_mass_gap": float(coef[2]),
        "p_mass_gap_error": float(err[2]),
        "rms_log_residual": float(np.sqrt(resid @ resid / len(rows))),
        # the largest m_eff - m at which the fitted variance still lets half the trajectories
        # through: (2 erfcinv(1/2))^2 = a V^q gap^p
        "gap_at_half_acceptance": {
            f"{extent}^4": (sites_at_acceptance(1.0, 0.5) / (math.exp(coef[0]) * extent ** (4 * coef[1])))
            ** (1 / coef[2])
            for extent in (8, 16, 32, 64)
        },
    }


def load(paths: list[str]) -> list[dict]:
    """The points of earlier runs' JSON documents, all of one gauge group and beta (a fit across
    theories would mean nothing)."""
    docs = {path: json.loads(Path(path).read_text()) for path in paths}
    theories = {(d.get("group", "SU(2)"), d.get("beta")) for d in docs.values()}
    if len(theories) > 1:
        raise SystemExit(f"--plot: runs of {sorted(theories)} (group, beta); allowed: runs of one group and beta")
    return [p for d in docs.values() for p in d["points"]]


def plot(paths: list[str], out: str) -> None:
    """Cost ratio to the baseline against the number of sites, one panel per light mass:
    measured thin SLHMC (filled) and the perfect-network bound (open), best ``m_eff`` each."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = load(paths)
    masses = sorted({p["mass"] for p in points}, reverse=True)
    fig, axes = plt.subplots(1, len(masses), figsize=(4 * len(masses), 3.4), sharey=True, squeeze=False)
    for ax, mass in zip(axes[0], masses, strict=True):
        for sampler, colour in (("slhmc_thin", "C0"), ("slhmc_hasenbusch_thin", "C1")):
            pts = sorted((p for p in points if p["mass"] == mass), key=lambda p: p["sites"])
            rows = [[r for r in p["slhmc"] if r["sampler"] == sampler] for p in pts]
            have = [(p["sites"], rs) for p, rs in zip(pts, rows, strict=True) if rs]
            if not have:
                continue
            v = [s for s, _ in have]
            ax.plot(
                v, [min(r["cg_ratio_to_baseline"] for r in rs) for _, rs in have], "o-", color=colour, label=sampler
            )
            ax.plot(
                v,
                [min(r["perfect_network"]["cg_ratio_to_baseline"] for r in rs) for _, rs in have],
                "o--",
                mfc="none",
                color=colour,
                label=f"{sampler}: perfect network",
            )
        ax.axhline(1.0, color="k", lw=0.8)
        ax.axhline(0.5, color="k", lw=0.8, ls=":")
        sites = sorted({p["sites"] for p in points if p["mass"] == mass})
        ax.set(xscale="log", yscale="log", xlabel="lattice", title=f"m = {mass}")
        ax.set_xticks(sites, [f"{round(v**0.25)}$^4$" for v in sites])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0][0].set_ylabel("CG per accepted trajectory / best baseline")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lattices", type=int, nargs="+", default=[4, 6])
    ap.add_argument("--masses", type=float, nargs="+", default=[0.1, 0.05, 0.02])
    ap.add_argument("--colours", type=int, default=2, choices=(2, 3), help="SU(N) of the gauge field")
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--m-eff", type=float, nargs="+", default=[0.1, 0.15, 0.2, 0.3])
    ap.add_argument("--hasenbusch-masses", type=float, nargs="+", default=[0.2, 0.3])
    ap.add_argument("--outer-steps", type=int, nargs="+", default=[3])
    ap.add_argument("--plain-steps", type=int, nargs="+", default=[8, 10])
    ap.add_argument("--slhmc-steps", type=int, default=6, help="Omelyan steps of SLHMC's fermion level")
    ap.add_argument("--gauge-steps", type=int, default=4)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--therm", type=int, default=12)
    ap.add_argument("--trajectories", type=int, default=6, help="trajectories per setting")
    ap.add_argument("--spectrum-configs", type=int, default=6)
    ap.add_argument("--tol", type=float, default=1e-10, help="CG residual of heat bath and Metropolis")
    ap.add_argument("--md-tol", type=float, default=None, help="CG residual of the MD forces (default: --tol)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    ap.add_argument("--plot", nargs="+", metavar="JSON", help="draw the map from earlier runs")
    ap.add_argument("--out", default="slhmc_gain.png")
    ap.add_argument(
        "--fit-min-sites",
        type=int,
        default=1296,
        help="smallest lattice of the growth fit (4^4 has a finite-volume gap)",
    )
    args = ap.parse_args()
    if args.plot:
        plot(args.plot, args.out)
        print(
            json.dumps(
                {
                    "benchmark": "slhmc_gain_model",
                    "target": 0.5,
                    "growth": [fit_growth(load(args.plot), key, args.fit_min_sites) for key in ("floor", "thin")],
                    "rows": model(load(args.plot), 0.5),
                },
                indent=1,
            )
        )
        return
    if args.quick:
        args.lattices, args.masses, args.m_eff, args.chains = [2], [0.1], [0.2], 2
        args.therm, args.trajectories, args.plain_steps, args.hasenbusch_masses = 2, 2, [4], [0.3]
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    points = [point(args, extent, mass) for extent in args.lattices for mass in args.masses]
    print(
        json.dumps(
            {
                **header("slhmc_gain", args.threads, args.beta, SU(args.colours)),
                "chains": args.chains,
                "solver_tol": args.tol,
                "md_solver_tol": args.tol if args.md_tol is None else args.md_tol,
                "trajectories_per_setting": args.trajectories,
                "trajectory_length": 1.0,
                "integrator": "omelyan",
                "gauge_steps": args.gauge_steps,
                "points": points,
                "wall_seconds": time.perf_counter() - t0,
                "cost_note": "CG iterations per accepted trajectory (acceptance = <min(1, exp(-dH))>)",
                "bound_note": "perfect network: the thin sampler's CG per trajectory over erfc(sqrt(floor) / 2)",
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
