"""Tune Hasenbusch HMC against plain HMC at one light-quark point; prints one JSON document.

SU(2) (or SU(3)) with staggered quarks (``--fermion wilson``: two Wilson flavours, 4D), every
setting from the same thermalised fields, the
same chains, dtype (float64) and threads, one setting at a time. Per setting:

- CG iterations per trajectory: molecular dynamics per level (``cg_md_k``, outermost first)
  and heat bath + Metropolis (``cg_metropolis``); seconds per trajectory;
- the acceptance as the mean Metropolis probability ``<min(1, exp(-dH))>`` (lower variance
  than the accept count) and ``<dH^2>``;
- ``cg_per_accepted``: CG iterations per accepted trajectory, the cost measure of the scan.
  At a fixed trajectory length the autocorrelation in trajectories is about the same for
  every setting (exact HMC at equal length), so this ranks the settings by cost per
  independent configuration; the workflow's ensembles measure tau_int itself.

Settings: plain HMC (fermion level ``n_steps`` in ``--plain-steps``, gauge ``--gauge-steps``
inside) and Hasenbusch HMC with each mass set of ``--masses`` (``0.2`` or ``0.15,0.5``) and
each outer step count of ``--outer-steps``; the inner fermion levels take ``--inner-steps``
steps per outer position update. The result names the cheapest of each family and their ratio.

Usage: ``python benchmarks/hasenbusch.py [--lattice 4 4 4 4] [--mass 0.05] [--beta 2.0]
[--fermion staggered|wilson] [--chains 4] [--therm 20] [--trajectories 8] [--threads 2] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.samplers import HMC, Integrator, Level, hasenbusch_hmc
from lqcdml.theories import (
    StaggeredOperator,
    StaggeredPseudofermion,
    WilsonGaugeAction,
    WilsonOperator,
    WilsonPseudofermion,
)


def measure(sampler: HMC, fields: torch.Tensor, n_traj: int, seed: int) -> tuple[torch.Tensor, dict]:
    """``n_traj`` trajectories of ``sampler`` from ``fields``: the end fields and the figures."""
    state = sampler.init(fields, seed=seed)
    seconds, prob, dh2 = 0.0, 0.0, 0.0
    counters: dict[str, float] = {}
    for _ in range(n_traj):
        t0 = time.perf_counter()
        state, info = sampler.step(state)
        seconds += time.perf_counter() - t0
        dh = info.delta_H.double()
        prob += float(torch.clamp(torch.exp(-dh), max=1.0).mean())
        dh2 += float((dh**2).mean())
        for key, value in info.counters.items():
            if key.startswith("cg_"):
                counters[key] = counters.get(key, 0.0) + float(value) / n_traj
    acceptance = prob / n_traj
    cg = counters["cg_md"] + counters["cg_metropolis"]
    return state.fields, {
        "seconds_per_trajectory": seconds / n_traj,
        "acceptance": acceptance,
        "mean_dH2": dh2 / n_traj,
        "cg_per_trajectory": cg,
        "cg_per_accepted": cg / max(acceptance, 1e-12),
        "seconds_per_accepted": seconds / n_traj / max(acceptance, 1e-12),
        **{k: v for k, v in sorted(counters.items())},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lattice", type=int, nargs="+", default=[4, 4, 4, 4])
    ap.add_argument("--colors", type=int, default=2)
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--mass", type=float, default=0.05)
    ap.add_argument("--fermion", choices=("staggered", "wilson"), default="staggered")
    ap.add_argument("--n-flavours", type=int, default=4, help="staggered flavours (Wilson: 2)")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--therm", type=int, default=20, help="plain HMC trajectories before the scan")
    ap.add_argument("--trajectories", type=int, default=8, help="trajectories per setting")
    ap.add_argument("--plain-steps", type=int, nargs="+", default=[6, 8, 12])
    ap.add_argument("--masses", nargs="+", default=["0.15", "0.3", "0.15,0.5"])
    ap.add_argument("--outer-steps", type=int, nargs="+", default=[3, 4, 6])
    ap.add_argument("--inner-steps", type=int, default=2)
    ap.add_argument("--gauge-steps", type=int, default=4)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    args = ap.parse_args()
    if args.quick:
        args.lattice, args.chains, args.therm, args.trajectories = [4, 2, 2, 2], 2, 2, 2
        args.plain_steps, args.masses, args.outer_steps = [4], ["0.3"], [3]
    torch.set_num_threads(args.threads)
    group = SU(args.colors)
    gauge = WilsonGaugeAction(args.beta, group)
    if args.fermion == "wilson":
        args.n_flavours = 2
        light = [WilsonPseudofermion(WilsonOperator(args.mass, group), tol=args.tol)]
    else:
        light = [StaggeredPseudofermion(StaggeredOperator(args.mass, group), args.n_flavours, tol=args.tol)]
    shape = (len(args.lattice), *args.lattice)

    def plain(n_steps: int) -> HMC:
        return HMC(Integrator(group, (Level(tuple(light), n_steps), Level((gauge,), args.gauge_steps))), 1.0)

    t0 = time.perf_counter()
    fields = group.near_identity(make_generators(args.seed, args.chains), shape, 0.3)
    fields, therm = measure(plain(max(args.plain_steps)), fields, args.therm, args.seed + 1)
    rows = []
    for n in args.plain_steps:
        _, row = measure(plain(n), fields, args.trajectories, args.seed + 2)
        rows.append({"sampler": "hmc", "n_steps": n, **row})
    for spec in args.masses:
        masses = [float(m) for m in spec.split(",")]
        for n in args.outer_steps:
            hmc = hasenbusch_hmc(
                gauge, light, masses, n, [args.inner_steps] * len(masses), args.gauge_steps, "omelyan", 1.0
            )
            _, row = measure(hmc, fields, args.trajectories, args.seed + 2)
            rows.append({"sampler": "hasenbusch", "masses": masses, "n_steps": n, **row})
    best = {
        name: min((r for r in rows if r["sampler"] == name), key=lambda r: r["cg_per_accepted"])
        for name in ("hmc", "hasenbusch")
    }
    print(
        json.dumps(
            {
                "benchmark": "hasenbusch",
                "machine": platform.machine(),
                "threads": args.threads,
                "lattice": args.lattice,
                "group": f"SU({args.colors})",
                "beta": args.beta,
                "mass": args.mass,
                "fermion": args.fermion,
                "n_flavours": args.n_flavours,
                "chains": args.chains,
                "trajectory_length": 1.0,
                "integrator": "omelyan",
                "gauge_steps": args.gauge_steps,
                "inner_steps": args.inner_steps,
                "trajectories_per_setting": args.trajectories,
                "thermalisation": {"trajectories": args.therm, **therm},
                "settings": rows,
                "best": best,
                "hasenbusch_over_hmc_cg_per_accepted": best["hasenbusch"]["cg_per_accepted"]
                / best["hmc"]["cg_per_accepted"],
                "hasenbusch_over_hmc_seconds_per_accepted": best["hasenbusch"]["seconds_per_accepted"]
                / best["hmc"]["seconds_per_accepted"],
                "wall_seconds": time.perf_counter() - t0,
                "acceptance_note": "mean Metropolis probability <min(1, exp(-dH))>",
                "sqrt_mean_dH2_note": "erfc(sqrt(<dH^2>) / (2 sqrt 2)) is the acceptance of Gaussian dH",
                "erfc_check": [math.erfc(math.sqrt(r["mean_dH2"]) / (2 * math.sqrt(2))) for r in rows],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
