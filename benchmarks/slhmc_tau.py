"""Cost per independent configuration at one point of the SLHMC gain map: long chains of the
best baseline and of thin SLHMC from the same thermalised fields; prints one JSON document.

``benchmarks/slhmc_gain.py`` ranks samplers by CG iterations per accepted trajectory; this
script measures what that stands for. SU(2), staggered N_f = 4, one lattice and light mass
``m``; thermalisation by Hasenbusch HMC from near the identity, then, from those fields with
the same chains, float64 and threads, one sampler after the other:

- the baseline (``--baseline hmc:N`` plain HMC with N fermion steps, or
  ``--baseline hasenbusch:M1:N`` one intermediate mass M1 with N outer steps);
- thin SLHMC at ``--m-eff`` (``slhmc_thin``: molecular dynamics on the light operator at
  ``m_eff``, heat bath and Metropolis exact).

Per trajectory and chain: the plaquette and the chiral condensate (``--noise`` Z2 vectors at
mass ``m``, solved to 1e-10; the measurement's CG is not charged to the sampler). Per sampler
and observable (after ``--cut`` trajectories): the mean with its Gamma-method error (chains as
replicas), tau_int in trajectories with its error, the drift test of the cut
(``analysis.drift``; ``final`` only where it passes at the cut for every observable and
sampler, so that a slow mode the chains have not sampled cannot pass for a gain); the cost
per independent configuration ``cg_per_trajectory * 2 tau_int``
(seconds likewise) with the larger tau_int of the two observables; the agreement of the two
samplers' means in units of their combined error. The ratio SLHMC / baseline is what the
issue's target (<= 0.5) is about.

Usage: ``python benchmarks/slhmc_tau.py [--lattice 4] [--mass 0.05] [--baseline hmc:6]
[--m-eff 0.1] [--chains 8] [--trajectories 200] [--threads 1] [--series RUN.npz] [--quick]``

Runs with different ``--seed`` (one process per core) write their series and costs with
``--series`` (after each sampler, so a run stopped during SLHMC keeps its baseline);
``--combine A.npz B.npz ...`` analyses them together, their chains as more replicas (costs
per trajectory averaged over chains), and prints the same JSON document.
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
import xarray as xr

from lqcdml.analysis.drift import drift_test
from lqcdml.analysis.errors import dataarray_to_obs
from lqcdml.lattice import make_generators
from lqcdml.observables.fermion import chiral_condensate
from lqcdml.observables.gauge import plaquette
from lqcdml.samplers import HMC
from lqcdml.samplers.slhmc import slhmc

sys.path.insert(0, str(Path(__file__).parent))
from slhmc_setup import gauge_action, hasenbusch, header, plain_hmc, pseudofermion, start_fields  # noqa: E402  (the shared set-up)

OBSERVABLES = ("plaquette", "condensate")


def baseline_sampler(spec: str, gauge, light, gauge_steps: int) -> HMC:
    """``hmc:N`` or ``hasenbusch:M1:N`` (see the module docstring)."""
    kind, *rest = spec.split(":")
    if kind == "hmc" and len(rest) == 1:
        return plain_hmc(gauge, light, int(rest[0]), gauge_steps)
    if kind == "hasenbusch" and len(rest) == 2:
        return hasenbusch(gauge, light, float(rest[0]), int(rest[1]), gauge_steps)
    raise SystemExit(f"--baseline = {spec!r}; allowed: hmc:N or hasenbusch:M1:N")


def sample_series(sampler: HMC, fields: torch.Tensor, n_traj: int, seed: int, light, n_noise: int) -> dict:
    """``n_traj`` trajectories from ``fields``: per-trajectory series ``[n_traj, chains]`` (no
    condensate if ``n_noise`` is 0), costs and the end fields."""
    group = light.operator.group
    state = sampler.init(fields, seed=seed)
    noise_gens = make_generators(seed + 1000, fields.shape[0])
    series: dict[str, list[np.ndarray]] = {name: [] for name in OBSERVABLES[: 2 if n_noise else 1]}
    seconds, cg, prob = 0.0, 0.0, []
    for k in range(n_traj):
        if k % 25 == 0:
            print(f"slhmc_tau: trajectory {k} of {n_traj}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        state, info = sampler.step(state)
        seconds += time.perf_counter() - t0
        cg += float(info.counters["cg_md"] + info.counters["cg_metropolis"])
        prob.append(float(info.accept_prob.mean()))
        links = state.fields
        series["plaquette"].append(plaquette(links, group).double().numpy())
        if n_noise:
            pbp = chiral_condensate(light.operator, links, noise_gens, n_noise, tol=1e-10)
            series["condensate"].append(pbp.mean(dim=1).double().numpy())
    return {
        "series": {k: np.stack(v) for k, v in series.items()},
        "seconds_per_trajectory": seconds / n_traj,
        "cg_per_trajectory": cg / n_traj,
        "acceptance": float(np.mean(prob)),
        "fields": state.fields,
    }


def analyse(chain: dict, cut: int, name: str) -> dict:
    """Means, tau_int and drift per observable; cost per independent configuration."""
    out: dict = {k: chain[k] for k in ("seconds_per_trajectory", "cg_per_trajectory", "acceptance")}
    taus = []
    for obs_name, values in chain["series"].items():
        kept = values[cut:]
        da = xr.DataArray(
            kept,
            dims=("config", "replica"),
            coords={"config": np.arange(cut, len(values)), "replica": np.arange(1, kept.shape[1] + 1)},
        )
        obs = dataarray_to_obs(da, name)
        obs.gamma_method(S=2.0)
        tau, dtau = float(obs.e_tauint[name]), float(obs.e_dtauint[name])
        drift = drift_test(da, name)
        out[obs_name] = {
            "mean": float(obs.value),
            "error": float(obs.dvalue),
            "tau_int": tau,
            "tau_int_error": dtau,
            "drift_z": None if drift is None else drift.z,
            "drift_p_windows": None if drift is None else drift.p_windows,
            "drift_flagged": None if drift is None else drift.flagged,
            "cut_needed": None if drift is None else drift.needed_cut,
        }
        taus.append((tau, dtau))
    tau, dtau = max(taus)
    # final only where the drift test passes at this cut for every observable (analysis.drift)
    out["final"] = all(out[k]["cut_needed"] == 0 for k in chain["series"])
    out["tau_int_max"] = tau
    out["cg_per_independent"] = chain["cg_per_trajectory"] * 2 * tau
    out["cg_per_independent_error"] = chain["cg_per_trajectory"] * 2 * dtau
    out["seconds_per_independent"] = chain["seconds_per_trajectory"] * 2 * tau
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lattice", type=int, default=4, help="extent of the L^4 lattice")
    ap.add_argument("--mass", type=float, default=0.05)
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--baseline", default="hmc:6", help="hmc:N or hasenbusch:M1:N")
    ap.add_argument("--m-eff", type=float, default=0.1)
    ap.add_argument("--slhmc-steps", type=int, default=6, help="Omelyan steps of SLHMC's fermion level")
    ap.add_argument("--gauge-steps", type=int, default=4)
    ap.add_argument("--therm-mass", type=float, default=0.2, help="Hasenbusch mass of the thermalising chain")
    ap.add_argument("--chains", type=int, default=8)
    ap.add_argument("--therm", type=int, default=30)
    ap.add_argument("--trajectories", type=int, default=200)
    ap.add_argument("--cut", type=int, default=20, help="trajectories dropped from each sampler's series")
    ap.add_argument("--noise", type=int, default=4, help="Z2 noise vectors per condensate measurement")
    ap.add_argument("--tol", type=float, default=1e-10, help="CG residual of heat bath and Metropolis")
    ap.add_argument("--md-tol", type=float, default=None, help="CG residual of the MD forces (default: --tol)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--series", help="also write every sampler's per-trajectory series here (.npz)")
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    ap.add_argument("--combine", nargs="+", metavar="NPZ", help="analyse these runs' --series together (no sampling)")
    args = ap.parse_args()
    if args.combine:
        chains = load_series(args.combine)
        report = compare({name: analyse(chain, args.cut, name) for name, chain in chains.items()})
        runs = {"combined": args.combine, "chains": int(chains["baseline"]["series"]["plaquette"].shape[1])}
        print(json.dumps({**header("slhmc_tau", args.threads, args.beta), **runs, "cut": args.cut, **report}, indent=1))
        return
    if args.quick:
        args.chains, args.therm, args.trajectories, args.cut, args.noise = 2, 2, 12, 2, 1
    if not args.mass < args.m_eff:
        raise SystemExit(f"--m-eff = {args.m_eff}; allowed: above --mass = {args.mass}")
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    gauge, light, eff = (
        gauge_action(args.beta),
        pseudofermion(args.mass, args.tol, args.md_tol),
        pseudofermion(args.m_eff, args.tol, args.md_tol),
    )
    therm = hasenbusch(gauge, light, args.therm_mass, 3, args.gauge_steps)
    fields = start_fields(args.seed, args.chains, args.lattice)
    therm_chain = sample_series(therm, fields, args.therm, args.seed + 1, light, 0)
    start = therm_chain["fields"]

    samplers = {
        "baseline": baseline_sampler(args.baseline, gauge, light, args.gauge_steps),
        "slhmc_thin": slhmc(gauge, [light], [eff], args.slhmc_steps, args.gauge_steps, "omelyan", 1.0),
    }
    chains = {}
    for i, (name, sampler) in enumerate(samplers.items()):
        chains[name] = sample_series(sampler, start, args.trajectories, args.seed + 2 + i, light, args.noise)
        if args.series:
            save_series(args.series, chains)
    report = compare({name: analyse(chain, args.cut, name) for name, chain in chains.items()})
    print(
        json.dumps(
            {
                **header("slhmc_tau", args.threads, args.beta),
                **run_settings(args),
                "thermalisation": {
                    "trajectories": args.therm,
                    "plaquette": therm_chain["series"]["plaquette"].mean(axis=1).tolist(),
                    "acceptance": therm_chain["acceptance"],
                },
                **report,
                "wall_seconds": time.perf_counter() - t0,
            },
            indent=1,
        )
    )


COSTS = ("seconds_per_trajectory", "cg_per_trajectory", "acceptance")


def save_series(path: str, chains: dict) -> None:
    """Every sampler's series ``[trajectories, chains]`` and per-trajectory costs to ``path``."""
    np.savez(
        path,
        **{f"{name}__{obs}": v for name, chain in chains.items() for obs, v in chain["series"].items()},
        **{f"{name}__{cost}": np.float64(chain[cost]) for name, chain in chains.items() for cost in COSTS},
    )


def load_series(paths: list[str]) -> dict:
    """The runs of ``save_series`` as one run: chains side by side (equal lengths required),
    costs per trajectory weighted by each run's chains."""
    runs = [dict(np.load(p)) for p in paths]
    chains: dict = {}
    for name in ("baseline", "slhmc_thin"):
        if not all(f"{name}__plaquette" in run for run in runs):
            raise SystemExit(f"--combine: {name} missing in one of {paths} (a run stopped before it ended)")
        obs_names = [o for o in OBSERVABLES if all(f"{name}__{o}" in run for run in runs)]
        lengths = {run[f"{name}__plaquette"].shape[0] for run in runs}
        if len(lengths) != 1:
            raise SystemExit(f"--combine: {name} has runs of {sorted(lengths)} trajectories; allowed: one length")
        widths = np.array([run[f"{name}__plaquette"].shape[1] for run in runs], dtype=float)
        chains[name] = {
            "series": {o: np.concatenate([run[f"{name}__{o}"] for run in runs], axis=1) for o in obs_names},
            **{c: float(np.average([float(run[f"{name}__{c}"]) for run in runs], weights=widths)) for c in COSTS},
        }
    return chains


def compare(rows: dict) -> dict:
    """The two samplers' rows with the agreement of their means and the cost ratio."""
    base, thin = rows["baseline"], rows["slhmc_thin"]
    agreement = {
        k: (thin[k]["mean"] - base[k]["mean"]) / math.hypot(thin[k]["error"], base[k]["error"]) for k in OBSERVABLES
    }
    ratio = thin["cg_per_independent"] / base["cg_per_independent"]
    ratio_error = ratio * math.hypot(
        thin["cg_per_independent_error"] / thin["cg_per_independent"],
        base["cg_per_independent_error"] / base["cg_per_independent"],
    )
    return {
        "samplers": rows,
        "final": all(r["final"] for r in rows.values()),
        "agreement_sigma": agreement,
        "cg_ratio_per_independent": ratio,
        "cg_ratio_per_independent_error": ratio_error,
        "seconds_ratio_per_independent": thin["seconds_per_independent"] / base["seconds_per_independent"],
    }


def run_settings(args) -> dict:
    return {
        "lattice": [args.lattice] * 4,
        "mass": args.mass,
        "baseline_spec": args.baseline,
        "m_eff": args.m_eff,
        "slhmc_steps": args.slhmc_steps,
        "chains": args.chains,
        "solver_tol": args.tol,
        "md_solver_tol": args.tol if args.md_tol is None else args.md_tol,
        "trajectories": args.trajectories,
        "cut": args.cut,
    }


if __name__ == "__main__":
    main()
