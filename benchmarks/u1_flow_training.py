"""U(1) flow training benchmark at paper_flow_u1's point: 2D U(1), L = 16, beta = 6.

For each flow kind (``u1_plaquette``: 2 checkerboard layers + 16 sink partners;
``u1_equivariant``: 16 local layers with the 1 x 2 loop context) trains for a wall-time
budget (Adam, cosine schedule over the steps the budget allows at the measured speed,
gradient-norm cap 1) in ``--dtype`` and reports steps per second, the reverse KL (exact
log Z from Bessel functions), and the ESS and independence-Metropolis acceptance on fresh
float64 samples, with the plaquette flow's exact ESS bound beside it. Prints JSON.

``--compare`` also runs the plaquette flow's layer-by-layer path (``merged=False``, the
reference: the same bijection, each layer recomputing the plaquettes and solving for the
links) beside the merged one, both in one process and interleaved (speed probe and
training alternate in chunks, each path's own wall time counted against the same budget),
so that the load of a shared machine falls on both alike.

    python benchmarks/u1_flow_training.py                   # 150 s per kind
    python benchmarks/u1_flow_training.py --budget 60 --kinds u1_plaquette --threads 1 --compare
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
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PROBE_ROUNDS, PROBE_CHUNK, TRAIN_CHUNK = 4, 5, 10


def log_z(beta: float, volume: int) -> float:
    """``log int dtheta exp(-S)`` on the 2D torus (Lebesgue measure on the 2V link angles)."""
    n = np.arange(-40, 41)
    return 2 * volume * math.log(2 * math.pi) + math.log(np.sum(special.ive(n, beta) ** volume))


def build(kind: str, shape: tuple[int, int], partners: int, merged: bool, dtype: torch.dtype) -> torch.nn.Module:
    if kind == "u1_plaquette":
        return u1_plaquette_flow(shape, 2, (8, 8), 3, 6, n_partners=partners, merged=merged).to(dtype)
    return u1_flow(shape, 16, (8, 8), 3, 6, loop_context=True).to(dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--beta", type=float, default=6.0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--partners", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--budget", type=float, default=150.0, help="training wall time per kind (and path), seconds")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="training dtype")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="u1_plaquette: the layer-by-layer reference path beside the merged one, interleaved",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    shape = (args.size, args.size)
    action = WilsonGaugeAction(args.beta, U1()).action
    lz = log_z(args.beta, args.size**2)
    results = []
    for kind in args.kinds:
        paths = [True, False] if kind == "u1_plaquette" and args.compare else [True]
        # speed: PROBE_ROUNDS x PROBE_CHUNK steps after 5 warm-up steps, on throw-away copies, paths alternating
        probes = {}
        for merged in paths:
            torch.manual_seed(args.seed)
            probes[merged] = FlowTrainer(
                build(kind, shape, args.partners, merged, dtype), action, steps=100, seed=args.seed
            )
            for _ in range(5):
                probes[merged].step()
        elapsed = dict.fromkeys(paths, 0.0)
        for _ in range(PROBE_ROUNDS):
            for merged in paths:
                t0 = time.perf_counter()
                for _ in range(PROBE_CHUNK):
                    probes[merged].step()
                elapsed[merged] += time.perf_counter() - t0
        speed = {merged: PROBE_ROUNDS * PROBE_CHUNK / elapsed[merged] for merged in paths}
        trainers = {}
        for merged in paths:
            torch.manual_seed(args.seed)
            trainers[merged] = FlowTrainer(
                build(kind, shape, args.partners, merged, dtype),
                action,
                steps=max(1, int(speed[merged] * args.budget)),
                lr=args.lr,
                seed=args.seed,
                grad_clip=1.0,
            )
        seconds = dict.fromkeys(paths, 0.0)
        running = list(paths)
        while running:
            for merged in list(running):
                trainer = trainers[merged]
                t0 = time.perf_counter()
                for _ in range(min(TRAIN_CHUNK, trainer.steps - trainer.step_count)):
                    trainer.step()
                seconds[merged] += time.perf_counter() - t0
                if trainer.step_count >= trainer.steps or seconds[merged] >= args.budget:
                    running.remove(merged)
        for merged in paths:
            trainer = trainers[merged]
            fresh = evaluate_flow(trainer.model, action, args.samples, seed=args.seed + 1)
            results.append(
                {
                    "kind": kind,
                    "path": ("merged" if merged else "layer_by_layer") if kind == "u1_plaquette" else None,
                    "steps_per_second": round(speed[merged], 2),
                    "steps": trainer.step_count,
                    "train_seconds": round(seconds[merged], 1),
                    "kl_nats": round(float(np.mean(trainer.history["loss"][-100:])) + lz, 2),
                    "kl_identity_nats": round(args.size**2 * math.log(special.iv(0, args.beta)), 1),
                    "fresh_ess": round(fresh["ess"], 4),
                    "fresh_acceptance": round(fresh["acceptance"], 4),
                    "ess_bound": round(partner_ess_bound(args.beta, args.partners), 4)
                    if kind == "u1_plaquette"
                    else None,
                }
            )
    print(
        json.dumps(
            {
                "lattice": list(shape),
                "beta": args.beta,
                "threads": args.threads,
                "dtype": args.dtype,
                "samples": args.samples,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
