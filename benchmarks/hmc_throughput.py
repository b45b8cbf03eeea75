"""HMC throughput and SU(3) force bandwidth; prints one JSON document.

Measured in one run on this machine (CPU, thread count a setting), each lattice case with
the compiled kernels (``lqcdml.kernels``) and with the pure-torch reference side by side:

- trajectories per second and link (site) updates per second (links or sites of all
  chains times trajectories per second) of Wilson-action HMC for SU(3) 8^4 and SU(2) 8^4
  (10 Omelyan steps, tau = 1, from a thermalised start), U(1) 16^2 and phi^4 16^2 with
  B = 1 and B = 64 chains (torch only: no kernels there);
- the SU(3) gauge force in float64 and float32, B = 1 and B = 4: effective memory
  bandwidth beside the bandwidth of a plain large array copy, and GFLOP/s beside a large
  float64 matrix product (the machine's practical peak) measured in the same run.

Bandwidth model of the force: the minimal traffic, reading every link once and writing
every force matrix once (2 x 4 V x 9 complex numbers), divided by the time. Flop model:
13 complex 3x3 products per link (12 for the six staples, one for U A), 216 flops each,
11232 flops per site: at that arithmetic intensity (~10 flop/byte in float64) the force
is bound by the floating-point units, not by memory.

Usage: ``python benchmarks/hmc_throughput.py [--threads 2] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from kernel_timing import copy_bandwidth, dgemm_gflops, kernels, timeit

from lqcdml.lattice import SU, U1, make_generators, randn
from lqcdml.samplers import HMC, Integrator
from lqcdml.theories import Phi4Action, WilsonGaugeAction

FORCE_FLOPS_PER_SITE = 4 * 13 * 216


def hmc_case(name, action, start, n_steps, n_traj, units_per_config, warmup=1) -> dict:
    hmc = HMC(Integrator.single(action, n_steps, "omelyan"), 1.0)
    state = hmc.init(start, seed=0)
    for _ in range(warmup):  # warm-up (and a first approach to equilibrium)
        state, _ = hmc.step(state)
    t0 = time.perf_counter()
    acc = 0
    for _ in range(n_traj):
        state, info = hmc.step(state)
        acc += int(info.accepted.sum())
    seconds = (time.perf_counter() - t0) / n_traj
    n_chains = start.shape[0]
    return {
        "what": name,
        "chains": n_chains,
        "omelyan_steps": n_steps,
        "seconds_per_trajectory": seconds,
        "trajectories_per_second": n_chains / seconds,
        "updates_per_second": n_chains * units_per_config / seconds,
        "acceptance": acc / (n_traj * n_chains),
    }


def thermalised_start(group, beta: float, seed: int, n_traj: int) -> torch.Tensor:
    """An SU(N) 8^4 configuration after ``n_traj`` HMC trajectories from a random start."""
    start = group.near_identity(make_generators(seed, 1), (4, 8, 8, 8, 8), 0.6)
    hmc = HMC(Integrator.single(WilsonGaugeAction(beta, group), 20, "omelyan"), 0.5)
    state = hmc.init(start, seed=seed)
    for _ in range(n_traj):
        state, _ = hmc.step(state)
    return state.fields


def force_cases(reps: int) -> list[dict]:
    group = SU(3)
    out = []
    for dtype in (torch.complex128, torch.complex64):
        for chains in (1, 4):
            # contiguous, as a chain's links are after their first update (haar gives a transposed view)
            links = group.haar(make_generators(4, chains), (4, 8, 8, 8, 8)).to(dtype).contiguous()
            action = WilsonGaugeAction(6.0, group)
            minimal_bytes = 2 * links.numel() * links.element_size()
            row = {"dtype": str(dtype).removeprefix("torch."), "chains": chains}
            for mode in ("extension", "torch"):
                with kernels(mode):
                    seconds = timeit(lambda: action.force(links), reps)
                row[mode] = {
                    "seconds": seconds,
                    "effective_GBps": minimal_bytes / seconds / 1e9,
                    "GFLOPs": FORCE_FLOPS_PER_SITE * chains * 8**4 / seconds / 1e9,
                }
            row["speed_up"] = row["torch"]["seconds"] / row["extension"]["seconds"]
            out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reps = 2 if args.quick else 5

    results = []
    for n, beta in ((3, 6.0), (2, 2.4)):
        group = SU(n)
        with kernels("extension"):
            start = thermalised_start(group, beta, 1, 10 if args.quick else 30)
        action = WilsonGaugeAction(beta, group)
        for mode in ("extension", "torch"):
            with kernels(mode):
                row = hmc_case(f"su{n}_8^4_wilson_hmc", action, start, 10, reps, 4 * 8**4, warmup=1)
            results.append({**row, "kernels": mode})
    for chains in (1, 64):
        group = U1()
        start = group.haar(make_generators(2, chains), (2, 16, 16))
        results.append(
            hmc_case(f"u1_16^2_wilson_hmc_B{chains}", WilsonGaugeAction(2.0, group), start, 10, 4 * reps, 2 * 256)
        )
        start = 0.3 * randn(make_generators(3, chains), (16, 16))
        results.append(hmc_case(f"phi4_16^2_hmc_B{chains}", Phi4Action(-4.0, 8.0), start, 10, 4 * reps, 256))

    copy_gbs = copy_bandwidth()
    peak = dgemm_gflops()
    forces = force_cases(4 * reps)
    for row in forces:
        for mode in ("extension", "torch"):
            row[mode]["fraction_of_copy"] = row[mode]["effective_GBps"] / copy_gbs
            row[mode]["fraction_of_dgemm"] = row[mode]["GFLOPs"] / peak
    su3 = {r["kernels"]: r["trajectories_per_second"] for r in results if r["what"] == "su3_8^4_wilson_hmc"}

    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
        "copy_GBps": copy_gbs,
        "dgemm_GFLOPs": peak,
        "hmc": results,
        "su3_8^4_hmc_speed_up": su3["extension"] / su3["torch"],
        "su3_force_8^4": forces,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
