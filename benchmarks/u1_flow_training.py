"""U(1) flow training benchmark at paper_flow_u1's point: 2D U(1), L = 16, beta = 6.

For each flow kind (``u1_plaquette``: 2 checkerboard layers + 16 sink partners;
``u1_equivariant``: 16 local layers with the 1 x 2 loop context) trains for a wall-time
budget (Adam, cosine schedule over the steps the budget allows at the measured speed,
gradient-norm cap 1) and reports steps per second, the reverse KL (exact log Z from Bessel
functions), and the ESS and independence-Metropolis acceptance on fresh float64 samples,
with the plaquette flow's exact ESS bound beside it. Prints JSON.

    python benchmarks/u1_flow_training.py                   # 150 s per kind
    python benchmarks/u1_flow_training.py --budget 60 --kinds u1_plaquette
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from scipy import special

from lqcdml.lattice import U1
from lqcdml.nn import u1_flow, u1_plaquette_flow
from lqcdml.nn.u1_plaquette import partner_ess_bound
from lqcdml.theories import WilsonGaugeAction
from lqcdml.train import FlowTrainer, evaluate_flow

KINDS = ("u1_plaquette", "u1_equivariant")


def log_z(beta: float, volume: int) -> float:
    """``log int dtheta exp(-S)`` on the 2D torus (Lebesgue measure on the 2V link angles)."""
    n = np.arange(-40, 41)
    return 2 * volume * math.log(2 * math.pi) + math.log(np.sum(special.ive(n, beta) ** volume))


def build(kind: str, shape: tuple[int, int], partners: int) -> torch.nn.Module:
    if kind == "u1_plaquette":
        return u1_plaquette_flow(shape, 2, (8, 8), 3, 6, n_partners=partners)
    return u1_flow(shape, 16, (8, 8), 3, 6, loop_context=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--beta", type=float, default=6.0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--partners", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--budget", type=float, default=150.0, help="training wall time per kind, seconds")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = (args.size, args.size)
    action = WilsonGaugeAction(args.beta, U1()).action
    lz = log_z(args.beta, args.size**2)
    results = []
    for kind in args.kinds:
        torch.manual_seed(args.seed)
        # speed: 20 steps after 5 warm-up steps, on a throw-away copy
        probe = FlowTrainer(build(kind, shape, args.partners), action, steps=100, seed=args.seed)
        for _ in range(5):
            probe.step()
        t0 = time.perf_counter()
        for _ in range(20):
            probe.step()
        speed = 20 / (time.perf_counter() - t0)
        steps = max(1, int(speed * args.budget))
        torch.manual_seed(args.seed)
        trainer = FlowTrainer(build(kind, shape, args.partners), action, steps=steps, lr=args.lr,
                              seed=args.seed, grad_clip=1.0)
        t0 = time.perf_counter()
        while trainer.step_count < steps and time.perf_counter() - t0 < args.budget:
            trainer.step()
        seconds = time.perf_counter() - t0
        fresh = evaluate_flow(trainer.model, action, args.samples, seed=args.seed + 1)
        results.append({
            "kind": kind,
            "steps_per_second": round(speed, 2),
            "steps": trainer.step_count,
            "train_seconds": round(seconds, 1),
            "kl_nats": round(float(np.mean(trainer.history["loss"][-100:])) + lz, 2),
            "kl_identity_nats": round(args.size**2 * math.log(special.iv(0, args.beta)), 1),
            "fresh_ess": round(fresh["ess"], 4),
            "fresh_acceptance": round(fresh["acceptance"], 4),
            "ess_bound": round(partner_ess_bound(args.beta, args.partners), 4) if kind == "u1_plaquette" else None,
        })
    print(json.dumps({"lattice": list(shape), "beta": args.beta, "threads": args.threads,
                      "samples": args.samples, "results": results}, indent=1))


if __name__ == "__main__":
    main()
