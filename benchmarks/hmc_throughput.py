"""HMC throughput and SU(3) force bandwidth; prints one JSON document.

Measured in one run on this machine (double precision, CPU, thread count a setting):

- trajectories per second and link (site) updates per second (links or sites of all
  chains times trajectories per second) of Wilson-action HMC for
  SU(3) 8^4 and SU(2) 8^4 (10 Omelyan steps), U(1) 16^2 and phi^4 16^2 with B = 1 and
  B = 64 chains;
- the effective memory bandwidth of the SU(3) gauge force beside the bandwidth of a
  plain large array copy measured in the same run.

Bandwidth model of the force: the minimal traffic, reading every link once and
writing every force matrix once (2 x 4 V x 9 complex128 = 2 x 576 V bytes), divided by
the time. It is a lower bound on the traffic the implementation causes; the ratio to
the copy bandwidth says how far the vectorised tensor code is from streaming speed.

Usage: ``python benchmarks/hmc_throughput.py [--threads 2] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from lqcdml.lattice import SU, U1, make_generators, randn
from lqcdml.samplers import HMC, Integrator
from lqcdml.theories import Phi4Action, WilsonGaugeAction


def _timeit(fn, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def copy_bandwidth(n_bytes: int = 512 * 2**20, repeat: int = 5) -> float:
    """GB/s of ``y.copy_(x)`` on a large float64 array (read + write counted)."""
    x = torch.ones(n_bytes // 8, dtype=torch.float64)
    y = torch.empty_like(x)
    seconds = _timeit(lambda: y.copy_(x), repeat)
    return 2 * n_bytes / seconds / 1e9


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
        shape = (4, 8, 8, 8, 8)
        # a start near the identity, a few trajectories towards equilibrium before timing
        start = group.near_identity(make_generators(1, 1), shape, 0.2)
        action = WilsonGaugeAction(beta, group)
        results.append(
            hmc_case(f"su{n}_8^4_wilson_hmc", action, start, 10, reps, 4 * 8**4, warmup=reps)
        )
    for chains in (1, 64):
        group = U1()
        start = group.haar(make_generators(2, chains), (2, 16, 16))
        results.append(
            hmc_case(f"u1_16^2_wilson_hmc_B{chains}", WilsonGaugeAction(2.0, group), start, 10, 4 * reps, 2 * 256)
        )
        start = 0.3 * randn(make_generators(3, chains), (16, 16))
        results.append(
            hmc_case(f"phi4_16^2_hmc_B{chains}", Phi4Action(-4.0, 8.0), start, 10, 4 * reps, 256)
        )

    # SU(3) force bandwidth beside a plain copy
    group = SU(3)
    links = group.haar(make_generators(4, 1), (4, 8, 8, 8, 8))
    action = WilsonGaugeAction(6.0, group)
    force_seconds = _timeit(lambda: action.force(links), 4 * reps)
    minimal_bytes = 2 * links.numel() * links.element_size()
    copy_gbs = copy_bandwidth()
    force_gbs = minimal_bytes / force_seconds / 1e9
    matmul_seconds = _timeit(lambda: links @ links, 10 * reps)
    matmul_gbs = 3 * links.numel() * links.element_size() / matmul_seconds / 1e9

    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
        "hmc": results,
        "su3_force_8^4": {
            "seconds": force_seconds,
            "minimal_bytes": minimal_bytes,
            "effective_GBps": force_gbs,
            "copy_GBps": copy_gbs,
            "fraction_of_copy": force_gbs / copy_gbs,
            "batched_3x3_matmul_GBps": matmul_gbs,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
