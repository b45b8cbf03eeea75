"""SLHMC against HMC at a light mass, side by side in one run; prints one JSON document.

The ``slhmc_light`` set-up (SU(2) 4^4, beta = 2.7, staggered Nf = 4 at m = 0.05; SLHMC's
molecular dynamics at m_eff = 0.3), every sampler from the same thermalised fields, the
same chains, dtype (float64) and threads, one sampler at a time:

- seconds, CG iterations (molecular dynamics and heat bath + Metropolis apart) and
  acceptance per trajectory of HMC, SLHMC without a network (thin links) and SLHMC with
  the covariant stout net;
- one fermion force of the net split into the solve at the smeared links and the network
  (smearing with its autograd graph plus the vector-jacobian product): what the network
  adds to every molecular-dynamics step.

CG iterations do not depend on the machine; seconds do (and on the thread count).
The net is a trained checkpoint (``--model``, e.g. ``results/slhmc_light/models/stout.pt``
of the workflow) or, without one, the untrained net with small random weights (a net's
cost does not depend on its weights; its acceptance does).

Usage: ``python benchmarks/slhmc_cost.py [--threads 2] [--model PATH] [--override KEY=VALUE ...] [--quick]``
(overrides change the set-up, e.g. the lattice and ``m_eff`` of every ensemble)
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from lqcdml.assembly import build_model, build_sampler, initial_fields
from lqcdml.config import compose_experiment
from lqcdml.driver.specs import load_model
from lqcdml.lattice import make_generators
from lqcdml.samplers.slhmc import SmearedPseudofermion


def run_chain(sampler, fields: torch.Tensor, n_traj: int, seed: int) -> tuple[torch.Tensor, dict]:
    """``n_traj`` trajectories from ``fields``: the end fields and the per-trajectory figures."""
    state = sampler.init(fields, seed=seed)
    seconds, cg_md, cg_met, acc = 0.0, 0, 0, 0.0
    for _ in range(n_traj):
        t0 = time.perf_counter()
        state, info = sampler.step(state)
        seconds += time.perf_counter() - t0
        cg_md += int(info.counters["cg_md"])
        cg_met += int(info.counters["cg_metropolis"])
        acc += float(info.accepted.double().mean())
    n_chains = fields.shape[0]
    return state.fields, {
        "trajectories": n_traj,
        "chains": n_chains,
        "seconds_per_trajectory": seconds / n_traj,
        "seconds_per_chain_trajectory": seconds / (n_traj * n_chains),
        "cg_md_per_trajectory": cg_md / n_traj,
        "cg_metropolis_per_trajectory": cg_met / n_traj,
        "acceptance": acc / n_traj,
    }


def force_split(sampler, fields: torch.Tensor, repeats: int) -> dict:
    """One effective fermion force of ``sampler`` (an SLHMC with a net): total, solve, network."""
    term = next(t for level in sampler.integrator.levels for t in level.terms if isinstance(t, SmearedPseudofermion))
    gens = make_generators(1, fields.shape[0])
    phi = term.heat_bath(fields, gens)
    smeared = term.smeared(fields)

    def seconds(fn) -> float:
        fn()  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats

    total = seconds(lambda: term.force(fields, phi))
    solve = seconds(lambda: term.base.force(smeared, phi))
    return {
        "force_seconds": total,
        "solve_seconds": solve,
        "network_seconds": total - solve,
        "network_fraction": (total - solve) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="", help="a trained stout checkpoint of slhmc_light")
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--therm", type=int, default=30, help="HMC trajectories from a hot start")
    parser.add_argument("--trajectories", type=int, default=10)
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        help="Hydra overrides of the experiment, e.g. 'ensembles.stout.sampler.options.m_eff=0.1'",
    )
    parser.add_argument("--quick", action="store_true", help="4 chains, 5 + 3 trajectories")
    args = parser.parse_args()
    if args.quick:
        args.chains, args.therm, args.trajectories = 4, 5, 3
    torch.set_num_threads(args.threads)

    cfg = compose_experiment(
        "slhmc_light",
        [f"ensembles.{e}.chain.n_chains={args.chains}" for e in ("hmc", "thin", "stout")] + list(args.override),
    )
    hmc_ens, thin_ens, stout_ens = (cfg.ensembles[e] for e in ("hmc", "thin", "stout"))
    if args.model:
        net, net_source = load_model(stout_ens, args.model), args.model
    else:
        net, net_source = build_model(stout_ens), "untrained, weights N(0, 0.02)"
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(0.02 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        net = net.eval().requires_grad_(False)

    hmc = build_sampler(hmc_ens)
    fields = initial_fields(hmc_ens, make_generators(hmc_ens.chain.seed, args.chains), torch.float64, "cpu")
    t0 = time.perf_counter()
    fields, _ = run_chain(hmc, fields, args.therm, seed=1)
    therm_seconds = time.perf_counter() - t0

    samplers = {"hmc": hmc, "thin": build_sampler(thin_ens), "stout": build_sampler(stout_ens, net)}
    cases = {}
    for name, sampler in samplers.items():
        _, cases[name] = run_chain(sampler, fields, args.trajectories, seed=2)
    cases["stout"]["force"] = force_split(samplers["stout"], fields, repeats=3 if args.quick else 10)
    base = cases["hmc"]
    for case in cases.values():
        case["seconds_vs_hmc"] = case["seconds_per_trajectory"] / base["seconds_per_trajectory"]
        cg = case["cg_md_per_trajectory"] + case["cg_metropolis_per_trajectory"]
        case["cg_vs_hmc"] = cg / (base["cg_md_per_trajectory"] + base["cg_metropolis_per_trajectory"])
    print(
        json.dumps(
            {
                "benchmark": "slhmc_cost",
                "setup": {
                    "lattice": list(hmc_ens.theory.lattice),
                    "beta": hmc_ens.theory.beta,
                    "mass": hmc_ens.theory.fermion_mass,
                    "m_eff": float(thin_ens.sampler.options["m_eff"]),
                    "n_flavours": hmc_ens.theory.n_flavours,
                    "n_steps": hmc_ens.sampler.n_steps,
                    "dtype": "float64",
                    "net": net_source,
                    "overrides": list(args.override),
                    "thermalisation_trajectories": args.therm,
                    "thermalisation_seconds": therm_seconds,
                },
                "machine": {
                    "threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine(),
                    "torch": torch.__version__,
                },
                "cases": cases,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
