"""How far SLHMC's thin effective action misses the exact one: the whole light action against
the lightest Hasenbusch ratio, by volume and mass; prints one JSON document.

SU(2), staggered N_f = 4. Per lattice: Hasenbusch HMC thermalises ``--chains`` chains and then
records ``--configs`` configurations ``--gap`` trajectories apart (split at ``--generator-mass``
with ``--generator-steps`` outer steps: at 2 steps the chain of a 6^4 lattice accepted nothing,
so its "configurations" were the cold start; the JSON's ``acceptance`` says whether the chain
moved). On each, with the field drawn from the exact heat bath:

- whole action (``slhmc_thin``): ``d = S_f(m; U, phi) - S_f(m_eff; U, phi)``;
- lightest ratio (``slhmc_hasenbusch_thin``): ``d = S_r(m, m_1; U, phi) - S_r(m_eff, m_1; U, phi)``.

A Metropolis test of SLHMC sees ``dH = dH_eff + (d(U') - d(U))``; with the molecular dynamics
of the effective action exact and ``U'`` decorrelated from ``U``, ``<dH^2> ~ 2 var(d)`` and the
acceptance ``erfc(sqrt(var(d)) / 2)`` (Gaussian ``dH`` with ``<dH> = <dH^2> / 2``). ``var(d)``
is extensive: the JSON gives it per site, so the volume at which the acceptance falls to
one half (``var(d) = 0.91``) follows. A network improves on the thin numbers; this measures
what it has to repair.

With ``--spectrum`` the dense spectrum of ``-H^2`` on even sites gives, at fixed ``U``, the
field's part of ``var(d)`` (the whole action and the ratio share it) and the floor below which
no effective action at ``m_eff`` on any smeared links goes (``lqcdml.analysis.slhmc_floor``).

Usage: ``python benchmarks/slhmc_mismatch.py [--lattices 4 6] [--mass 0.05] [--m-eff 0.1 0.2 0.3]
[--hasenbusch-mass 0.4] [--threads 1] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from lqcdml.analysis.slhmc_floor import (
    gaussian_acceptance,
    mismatch_floor,
    modes_below,
    ratio_mismatch_floor,
    thin_field_variance,
)
from lqcdml.lattice import SU, make_generators
from lqcdml.observables import plaquette
from lqcdml.observables.fermion import staggered_even_spectrum
from lqcdml.samplers import hasenbusch_hmc
from lqcdml.theories import (
    StaggeredOperator,
    StaggeredPseudofermion,
    WilsonGaugeAction,
    hasenbusch_split,
    ratio_at_mass,
)

sys.path.insert(0, str(Path(__file__).parent))
from slhmc_setup import mismatch_draws  # noqa: E402  (the draws every SLHMC benchmark takes)


def spectral_variance(mu2: torch.Tensor, mass: float, m_eff: float, m_1: float) -> dict:
    """The field's part of var(d) (mean over configurations) and the floors no network lowers
    (``lqcdml.analysis.slhmc_floor``): whole action and lightest ratio."""
    c = (m_eff**2 - mass**2) / (mu2 + m_eff**2)
    floor = mismatch_floor(mu2, mass, m_eff)
    return {
        "field_var": thin_field_variance(mu2, mass, m_eff),
        "mean_of_d_spread": float(c.sum(-1).std()) if mu2.shape[0] > 1 else 0.0,
        "floor_var": floor,
        "floor_var_ratio": ratio_mismatch_floor(mu2, mass, m_eff, m_1) if m_eff < m_1 else None,
        "floor_acceptance": gaussian_acceptance(floor),
        "modes_below_m_eff": modes_below(mu2, mass, m_eff),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lattices", type=int, nargs="+", default=[4, 6])
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--mass", type=float, default=0.05)
    ap.add_argument("--m-eff", type=float, nargs="+", default=[0.1, 0.2, 0.3])
    ap.add_argument("--hasenbusch-mass", type=float, default=0.4)
    ap.add_argument("--generator-mass", type=float, default=0.2, help="Hasenbusch mass of the generating chain")
    ap.add_argument("--generator-steps", type=int, default=4, help="its outer Omelyan steps")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--therm", type=int, default=20)
    ap.add_argument("--configs", type=int, default=6, help="configurations per chain")
    ap.add_argument("--gap", type=int, default=2, help="trajectories between recorded configurations")
    ap.add_argument("--draws", type=int, default=8, help="pseudofermion fields per configuration")
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--spectrum", action="store_true", help="dense spectra: the field's variance and its floor")
    ap.add_argument("--spectrum-configs", type=int, default=8, help="configurations whose spectrum is computed")
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    args = ap.parse_args()
    if args.quick:
        args.lattices, args.chains, args.therm, args.configs, args.gap, args.m_eff = [2], 2, 2, 2, 1, [0.2]
        args.spectrum = True
    torch.set_num_threads(args.threads)
    group = SU(2)
    gauge = WilsonGaugeAction(args.beta, group)
    light = StaggeredPseudofermion(StaggeredOperator(args.mass, group), 4, tol=args.tol)
    ratio = hasenbusch_split(light, [args.hasenbusch_mass])[0]
    t0 = time.perf_counter()
    rows = []
    for extent in args.lattices:
        shape = (4, extent, extent, extent, extent)
        sites = extent**4
        hmc = hasenbusch_hmc(gauge, [light], [args.generator_mass], args.generator_steps, [1], 4, "omelyan", 1.0)
        state = hmc.init(group.near_identity(make_generators(args.seed, args.chains), shape, 0.3), args.seed)
        ts = time.perf_counter()
        acc = []
        for _ in range(args.therm):
            state, info = hmc.step(state)
        configs = []
        for _ in range(args.configs):
            for _ in range(args.gap):
                state, info = hmc.step(state)
                acc.append(float(info.accepted.double().mean()))
            configs.append(state.fields)
        links = torch.cat(configs)
        generation = time.perf_counter() - ts
        row = {
            "lattice": [extent] * 4,
            "sites": sites,
            "configurations": links.shape[0],
            "fields_per_configuration": args.draws,
            "acceptance": sum(acc) / len(acc),
            "plaquette": float(plaquette(links, group).mean()),
            "generation_seconds": generation,
            "m_eff": {},
        }
        if args.spectrum:
            ts = time.perf_counter()
            mu2 = staggered_even_spectrum(light.operator, links[: args.spectrum_configs])
            row["spectrum_seconds"] = time.perf_counter() - ts
            row["lowest_mu2"] = float(mu2[:, 0].mean())
        for m_eff in args.m_eff:
            entry = {}
            pairs = {"whole": (light, StaggeredPseudofermion(StaggeredOperator(m_eff, group), 4, tol=args.tol))}
            if m_eff < args.hasenbusch_mass:
                pairs["ratio"] = (ratio, ratio_at_mass(ratio, m_eff))
            for name, (exact, effective) in pairs.items():
                d = (
                    mismatch_draws(exact, effective, links, [args.seed + 7 + 1000 * k for k in range(args.draws)])
                    .flatten()
                    .double()
                )
                var = float(d.var())
                entry[name] = {
                    "mean_per_site": float(d.mean()) / sites,
                    "var": var,
                    "var_per_site": var / sites,
                    "predicted_acceptance": math.erfc(math.sqrt(var) / 2),
                    "sites_at_acceptance_half": 0.91 / (var / sites) if var > 0 else None,
                }
            if args.spectrum:
                entry["spectrum"] = spectral_variance(mu2, args.mass, m_eff, args.hasenbusch_mass)
            row["m_eff"][str(m_eff)] = entry
        rows.append(row)
    print(
        json.dumps(
            {
                "benchmark": "slhmc_mismatch",
                "machine": platform.machine(),
                "threads": args.threads,
                "group": "SU(2)",
                "beta": args.beta,
                "mass": args.mass,
                "n_flavours": 4,
                "hasenbusch_mass": args.hasenbusch_mass,
                "chains": args.chains,
                "rows": rows,
                "wall_seconds": time.perf_counter() - t0,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
