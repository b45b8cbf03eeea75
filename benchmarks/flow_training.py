"""Flow training benchmark at the flow tutorial's set-up (REFERENCE.md): 2D phi^4, L = 8,
m^2 = -4, lambda = 8; 16 affine couplings, Conv(1->8)-Conv(8->8)-Conv(8->2), batch 64.

Measures training steps per second, then trains for a wall-time budget and reports the
ESS and the independence-Metropolis acceptance on fresh float64 samples (10^4 by default).
Prints JSON.

    python benchmarks/flow_training.py                      # 294 s budget (2500 steps at 8.5/s)
    python benchmarks/flow_training.py --budget 60 --dtype float64
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from lqcdml.nn import phi4_flow
from lqcdml.theories import Phi4Action
from lqcdml.train import FlowTrainer, evaluate_flow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--budget", type=float, default=2500 / 8.5, help="training wall time in seconds")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    action = Phi4Action(m2=-4.0, lam=8.0)

    # speed: 200 steps after 20 warm-up steps
    probe = FlowTrainer(phi4_flow((8, 8)).to(dtype), action.action, steps=1000, batch=args.batch, seed=args.seed)
    for _ in range(20):
        probe.step()
    t0 = time.perf_counter()
    for _ in range(200):
        probe.step()
    steps_per_second = 200 / (time.perf_counter() - t0)

    # quality within the budget: the cosine schedule spans the steps the budget allows
    steps = int(args.budget * steps_per_second)
    torch.manual_seed(args.seed)
    trainer = FlowTrainer(phi4_flow((8, 8)).to(dtype), action.action, steps=steps, batch=args.batch,
                          lr=args.lr, seed=args.seed)
    t0 = time.perf_counter()
    while trainer.step_count < steps and time.perf_counter() - t0 < args.budget:
        trainer.step()
    seconds = time.perf_counter() - t0
    quality = evaluate_flow(trainer.model, action.action, args.samples, args.seed + 1)
    print(json.dumps({
        "setup": "phi4 2D L=8 m2=-4 lambda=8, 16 affine layers, hidden [8, 8], kernel 3",
        "dtype": args.dtype, "threads": args.threads, "batch": args.batch, "lr": args.lr,
        "steps_per_second": steps_per_second,
        "budget_seconds": args.budget, "trained_steps": trainer.step_count, "train_seconds": seconds,
        "final_loss": sum(trainer.history["loss"][-100:]) / min(100, trainer.step_count),
        "fresh_ess": quality["ess"], "fresh_acceptance": quality["acceptance"],
        "fresh_samples": quality["n_samples"],
    }, indent=2))


if __name__ == "__main__":
    main()
