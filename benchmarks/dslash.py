"""Fermion benchmarks; prints one JSON document.

- Staggered and Wilson Dslash (hopping term) on an 8^4 SU(3) lattice (``--extent``), float64 and
  float32, B = 1 and B = 8 fields, with the compiled kernels (Wilson: spin projection)
  and with the pure-torch reference side by side: GFLOP/s with the conventional counts
  (570 flops per site staggered, 1320 Wilson) and effective GB/s with the minimal-traffic
  model (8 links and 8 neighbour spinors read, one spinor written per site: 1584 B
  staggered, 2880 B Wilson in float64, half in float32), beside the bandwidth of a plain
  array copy in the same run.
- CG on D^dag D: iterations and seconds per solve (relative residual 1e-10), on a
  random-gauge (hot) and a smooth (near-identity) 8^4 configuration.
- Seconds per (R)HMC trajectory in the two-colour SLHMC paper's set-up (SU(2) 4^4,
  beta 2.7, staggered m 0.3, 20 leapfrog steps), Nf = 4 and Nf = 2, with 1 and 16
  chains per tensor, kernels and torch (the ``paper_slhmc_hmc`` set-up).

Usage: ``python benchmarks/dslash.py [--threads 2] [--quick] [--parts dslash cg trajectories]``
(the trajectories take minutes: the torch path runs RHMC with 16 chains).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from kernel_timing import copy_bandwidth, kernels, timeit

from lqcdml.assembly import build_sampler, initial_fields
from lqcdml.config.schema import ChainConfig, EnsembleConfig, SamplerConfig
from lqcdml.kinds.theories import SUTheory
from lqcdml.lattice import SU, make_generators
from lqcdml.solvers import cg
from lqcdml.theories.staggered import StaggeredOperator
from lqcdml.theories.wilson_fermion import WilsonOperator


def dslash_case(name, op, group, extent, internal, flops_per_site, bytes_per_site, repeat, copy_gbs) -> list[dict]:
    """``op.hop`` on an ``extent^4`` lattice in both dtypes and batch sizes, kernels beside torch."""
    shape = (extent,) * 4 + internal
    rows = []
    for dtype in (torch.complex128, torch.complex64):
        scale = 1.0 if dtype == torch.complex128 else 0.5
        for chains in (1, 8):
            # contiguous, as a chain's links are after their first update (haar gives a transposed view)
            links = group.haar(make_generators(0, chains), (4,) + (extent,) * 4).to(dtype).contiguous()
            psi = torch.randn(chains, *shape, dtype=dtype)
            sites = chains * extent**4
            row = {"what": name, "dtype": str(dtype).removeprefix("torch."), "chains": chains}
            for mode in ("extension", "torch"):
                with kernels(mode):
                    seconds = timeit(lambda: op.hop(links, psi), repeat)
                gbs = scale * bytes_per_site * sites / seconds / 1e9
                row[mode] = {
                    "seconds": seconds,
                    "GFLOPs": flops_per_site * sites / seconds / 1e9,
                    "effective_GBps": gbs,
                    "fraction_of_copy": gbs / copy_gbs,
                }
            row["speed_up"] = row["torch"]["seconds"] / row["extension"]["seconds"]
            rows.append(row)
    return rows


def cg_case(name, op, links, shape):
    b = torch.randn(1, *shape, dtype=torch.complex128)
    row = {"what": name}
    for mode in ("extension", "torch"):
        with kernels(mode):
            t0 = time.perf_counter()
            _, info = cg(lambda v: op.normal(links, v), b, tol=1e-10, maxiter=20_000)
            row[mode] = {"iterations": info.iterations, "seconds_per_solve": time.perf_counter() - t0}
    return row


def trajectory_case(n_flavours, n_chains, n_traj):
    ens = EnsembleConfig(
        theory=SUTheory(
            n_colors=2, lattice=[4, 4, 4, 4], beta=2.7, fermion="staggered", fermion_mass=0.3, n_flavours=n_flavours
        ),
        sampler=SamplerConfig(integrator="leapfrog", n_steps=20, gauge_steps=1, trajectory_length=1.0),
        chain=ChainConfig(n_chains=n_chains, start="hot"),
    )
    hmc = build_sampler(ens)
    start = hmc.init(initial_fields(ens, make_generators(0, n_chains), torch.complex128, "cpu"), 1)
    for _ in range(3):  # towards equilibrium
        start, _ = hmc.step(start)
    row = {"what": f"su2_4^4_staggered_nf{n_flavours}_hmc", "chains": n_chains}
    for mode in ("extension", "torch"):
        state = start
        with kernels(mode):
            t0 = time.perf_counter()
            for _ in range(n_traj):
                state, _ = hmc.step(state)
            seconds = (time.perf_counter() - t0) / n_traj
        row[mode] = {"seconds_per_batch_trajectory": seconds, "seconds_per_trajectory_per_chain": seconds / n_chains}
    row["speed_up"] = row["torch"]["seconds_per_batch_trajectory"] / row["extension"]["seconds_per_batch_trajectory"]
    return row


PARTS = ("dslash", "cg", "trajectories")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--extent", type=int, default=8, help="L of the L^4 Dslash lattice (16: beyond the caches)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="sections to run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reps = 5 if args.quick else 20
    group = SU(3)
    hot = group.haar(make_generators(0, 1), (4, 8, 8, 8, 8))
    smooth = group.near_identity(make_generators(1, 1), (4, 8, 8, 8, 8), 0.2)
    stag = StaggeredOperator(0.05, group)
    wils = WilsonOperator(0.05, group)
    copy_gbs = copy_bandwidth()
    report = {"threads": torch.get_num_threads(), "copy_GBps": copy_gbs}
    if "dslash" in args.parts:
        n = args.extent
        report["dslash"] = [
            *dslash_case(f"staggered_{n}^4_su3", stag, group, n, (3,), 570, 1584, reps, copy_gbs),
            *dslash_case(f"wilson_{n}^4_su3", wils, group, n, (4, 3), 1320, 2880, reps, copy_gbs),
        ]
    if "cg" in args.parts:
        report["cg"] = [
            cg_case("staggered_8^4_su3_m0.05_hot", stag, hot, (8, 8, 8, 8, 3)),
            cg_case("staggered_8^4_su3_m0.05_smooth", stag, smooth, (8, 8, 8, 8, 3)),
            cg_case("wilson_8^4_su3_m0.05_smooth", wils, smooth, (8, 8, 8, 8, 4, 3)),
        ]
    if "trajectories" in args.parts:
        report["trajectories"] = [
            trajectory_case(nf, chains, 2 if args.quick else 4) for nf in (4, 2, 1) for chains in (1, 16)
        ]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
