"""SU(N) flows against training time: acceptance, ESS and KL(q||p) per plaquette (2D), 4D beside.

Issue 29's 2D targets: ``su_flow`` (local gauge-equivariant couplings) for SU(2) at beta = 4 and
SU(3) at beta = 6 on L = 8, acceptance >= 0.4 and KL per plaquette <= 0.02 after at most
30 minutes of training on 2 cores. For each case (``--cases``) this trains one flow by the
reverse KL (``train.FlowTrainer``: Adam, cosine schedule over the steps the budget allows at
the speed measured over the first ``--probe`` steps, gradient-norm cap ``--grad-clip``) in
``--dtype`` for ``--budget`` wall seconds, and at ``--checkpoints`` evenly spaced training times
evaluates the flow on ``--samples`` fresh float64 samples (evaluation time not counted):
independence-Metropolis acceptance, ESS, ``KL(q||p)`` per plaquette from the fresh samples'
mean log weight and the exact ``ln Z`` (character expansion, ``analysis.exact_sun_2d``), and the
reweighted plaquette beside its exact finite-volume value. At the end the same weights are
evaluated on ``--transfer`` (the couplings are translation invariant: the state dict of an
``L = 8`` flow loads into an ``L = 16`` one). Prints JSON; each checkpoint also as one line on
stderr.

The case ``su3_4d`` is issue 29's 4D target: SU(3) on ``--size4``^4 at beta = 1, acceptance >= 0.3,
or at each beta of ``--beta4`` (a scan, the same budget each); ``su2_4d`` the same for SU(2). There is no exact ``ln Z`` in 4D:
its points give the mean log weight per plaquette (which the training raises towards ``-ln Z``
per plaquette) and the strong-coupling plaquette (``analysis.exact.strong_coupling_plaquette``,
valid at small beta) beside the reweighted one. Each 4D point also prices an independent sample:
the flow's from an independence Metropolis chain through its fresh samples in order (``tau_int``
of the plaquette, seconds per float64 sample, the training seconds spread over the independent
samples of ``--amortise`` proposals), and with ``--hmc4`` trajectories > 0 HMC's at the same
beta beside it (``--hmc4-steps`` Omelyan steps, 8 chains from a hot start, 50 trajectories
dropped; ``tau_int`` of the plaquette by the Gamma method).

    python benchmarks/su_flow_training.py                          # both cases, 1800 s each
    python benchmarks/su_flow_training.py --cases su2 --budget 600 --threads 1
    python benchmarks/su_flow_training.py --cases su3_4d --layers 48 --hidden 8 --batch 16
    python benchmarks/su_flow_training.py --cases su3_4d --beta4 0.5 1 2 3 --budget 600 --hmc4 400
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch

from lqcdml import observables
from lqcdml.analysis.errors import estimate
from lqcdml.analysis.exact import strong_coupling_plaquette
from lqcdml.analysis.exact_sun_2d import su_n_2d_log_z, su_n_2d_plaquette
from lqcdml.lattice import SU, make_generators
from lqcdml.nn.prior import cast_precision
from lqcdml.nn.su_equivariant import su_flow
from lqcdml.samplers import HMC, Integrator, run_chain
from lqcdml.samplers.flow_mcmc import effective_sample_size, independence_acceptance
from lqcdml.theories import WilsonGaugeAction
from lqcdml.train import FlowTrainer

#: case: (N, beta, dimensions); 2D cases have the exact ln Z and plaquette of the character
#: expansion, the 4D ones the strong-coupling plaquette (valid at small beta) and no ln Z
CASES = {"su2": (2, 4.0, 2), "su3": (3, 6.0, 2), "su3_4d": (3, 1.0, 4), "su2_4d": (2, 1.0, 4)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@torch.no_grad()
def evaluate(model, action, n: int, shape: tuple[int, ...], beta: float, samples: int, seed: int) -> dict:
    """Fresh float64 samples: acceptance, ESS, the reweighted plaquette; in 2D the KL per plaquette
    and the exact plaquette, in 4D the mean log weight per plaquette (``-KL - ln Z``, per plaquette)
    and the strong-coupling plaquette."""
    model = cast_precision(copy.deepcopy(model), torch.float64)
    group = SU(n)
    gen = torch.Generator().manual_seed(seed)
    log_w, plaq, seconds = [], [], 0.0
    for start in range(0, samples, 500):
        t0 = time.perf_counter()
        x, log_q = model.sample(min(500, samples - start), gen)
        log_w.append(-(action(x) + log_q))
        seconds += time.perf_counter() - t0
        plaq.append(observables.plaquette(x, group))
    lw, pl = torch.cat(log_w), torch.cat(plaq)
    volume = math.prod(shape)
    n_plaquettes = volume * len(shape) * (len(shape) - 1) // 2
    w = torch.softmax(lw, 0)
    reweighted = float((w * pl).sum())
    # delta-method error of the self-normalised estimator
    err = float(torch.sqrt((w**2 * (pl - reweighted) ** 2).sum()))
    point = {
        "acceptance": round(independence_acceptance(lw, torch.Generator().manual_seed(seed + 1)), 4),
        "ess": round(effective_sample_size(lw), 4),
        "plaquette": round(reweighted, 5),
        "plaquette_error": round(err, 5),
    }
    if len(shape) == 2:
        point["kl_per_plaquette"] = round((-float(lw.mean()) + su_n_2d_log_z(beta, n, volume)) / volume, 5)
        point["plaquette_exact"] = round(su_n_2d_plaquette(beta, n, volume), 5)
    else:
        point["mean_log_weight_per_plaquette"] = round(float(lw.mean()) / n_plaquettes, 5)
        point["plaquette_strong_coupling"] = round(strong_coupling_plaquette(beta, n), 5)
        chain = independence_chain(lw, pl, torch.Generator().manual_seed(seed + 3))
        tau = estimate(chain[:, None], "flow").tau_int
        point["chain_plaquette_tau_int"] = round(tau, 3)
        point["seconds_per_sample"] = seconds / samples
    return point


def independence_chain(log_w: torch.Tensor, values: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    """The series of ``values`` along an independence Metropolis chain through the proposals in
    order (weights ``exp(log_w)``), ``[proposals]``."""
    lw, vals = log_w.to(torch.float64).tolist(), values.to(torch.float64).tolist()
    u = torch.rand(len(lw), generator=generator, dtype=torch.float64).tolist()
    current, series = 0, []
    for k in range(len(lw)):
        if k and (lw[k] >= lw[current] or u[k] < math.exp(lw[k] - lw[current])):
            current = k
        series.append(vals[current])
    return np.asarray(series)


def hmc_point(n: int, shape: tuple[int, ...], beta: float, trajectories: int, steps: int, seed: int) -> dict:
    """HMC at the same point: 8 chains from a hot start, 50 trajectories dropped, ``trajectories``
    kept; acceptance, plaquette with its Gamma-method error and ``tau_int``, seconds per
    trajectory and chain, and per independent sample (``2 tau_int`` trajectories)."""
    group, chains = SU(n), 8
    hmc = HMC(Integrator.single(WilsonGaugeAction(beta, group), steps, "omelyan"), 1.0)
    state = hmc.start(make_generators(seed, chains), lambda gens: group.haar(gens, (len(shape), *shape)))
    state, _ = run_chain(hmc, state, 50)
    t0 = time.perf_counter()
    _, rec = run_chain(hmc, state, trajectories, measure=lambda u: observables.plaquette(u, group))
    per_trajectory = (time.perf_counter() - t0) / (trajectories * chains)
    plaq = estimate(rec["value"].to(torch.float64).numpy(), "hmc")
    return {
        "acceptance": round(float(rec["accepted"].to(torch.float64).mean()), 4),
        "plaquette": round(plaq.value, 5),
        "plaquette_error": round(plaq.error, 5),
        "plaquette_tau_int": round(plaq.tau_int, 3),
        "seconds_per_trajectory": per_trajectory,
        "seconds_per_independent": per_trajectory * max(2 * plaq.tau_int, 1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--size", type=int, default=8, help="2D lattice extent")
    parser.add_argument("--size4", type=int, default=4, help="4D lattice extent")
    parser.add_argument("--beta4", type=float, nargs="+", default=[1.0], help="the 4D case's beta (a scan)")
    parser.add_argument("--hmc4", type=int, default=0, help="HMC trajectories beside each 4D point (0: none)")
    parser.add_argument("--hmc4-steps", type=int, default=10)
    parser.add_argument(
        "--amortise", type=int, default=100_000, help="4D: proposals over which the training seconds are spread"
    )
    parser.add_argument(
        "--transfer", type=int, default=16, help="2D lattice size the trained weights are evaluated on (0: none)"
    )
    parser.add_argument(
        "--transfer4", type=int, default=0, help="the same in 4D (a multiple of 4: su_flow's masks; 0: none)"
    )
    parser.add_argument(
        "--transfer-samples", type=int, default=0, help="fresh samples on the transfer lattice (0: half of --samples)"
    )
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--grad-clip", type=float, default=1.0)
    parser.add_argument("--budget", type=float, default=1800.0, help="training wall seconds per case")
    parser.add_argument("--probe", type=int, default=10, help="steps timed to size the cosine schedule")
    parser.add_argument("--checkpoints", type=int, default=6)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    points = [(case, beta) for case in args.cases for beta in (args.beta4 if CASES[case][2] == 4 else [CASES[case][1]])]
    for case, beta in points:
        n, _, dims = CASES[case]
        shape = (args.size,) * dims if dims == 2 else (args.size4,) * dims
        action = WilsonGaugeAction(beta, SU(n)).action
        torch.manual_seed(args.seed)
        model = cast_precision(su_flow(shape, n, args.layers, args.hidden, args.bins), DTYPES[args.dtype])
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        probe = FlowTrainer(model, action, steps=10**6, batch=args.batch, seed=args.seed)
        t0 = time.perf_counter()
        for _ in range(args.probe):
            probe.step()
        speed = args.probe / (time.perf_counter() - t0)
        model.load_state_dict(initial)
        steps = max(1, int(speed * args.budget))
        trainer = FlowTrainer(
            model, action, steps=steps, batch=args.batch, lr=args.lr, seed=args.seed, grad_clip=args.grad_clip
        )
        curve, seconds = [], 0.0
        marks = [args.budget * (k + 1) / args.checkpoints for k in range(args.checkpoints)]
        for mark in marks:
            while seconds < mark and trainer.step_count < steps:
                t0 = time.perf_counter()
                trainer.step()
                seconds += time.perf_counter() - t0
            point = {
                "case": case,
                "train_seconds": round(seconds, 1),
                "steps": trainer.step_count,
                **evaluate(model, action, n, shape, beta, args.samples, args.seed + 1),
            }
            curve.append(point)
            print(json.dumps(point), file=sys.stderr, flush=True)
        transfer = None
        transfer_size = args.transfer if dims == 2 else args.transfer4
        if transfer_size:
            big = (transfer_size,) * dims
            transferred = su_flow(big, n, args.layers, args.hidden, args.bins)
            # the weights only: the masks are buffers of the lattice shape
            missing, unexpected = transferred.load_state_dict(dict(model.named_parameters()), strict=False)
            assert not unexpected and all(name not in dict(transferred.named_parameters()) for name in missing)
            transfer = {
                "lattice": list(big),
                **evaluate(
                    cast_precision(transferred, DTYPES[args.dtype]),
                    action,
                    n,
                    big,
                    beta,
                    args.transfer_samples or args.samples // 2,
                    args.seed + 2,
                ),
            }
        cost = None
        if dims == 4:
            last = curve[-1]
            independent = args.amortise / max(2 * last["chain_plaquette_tau_int"], 1.0)
            cost = {
                "flow_seconds_per_independent": last["seconds_per_sample"]
                * max(2 * last["chain_plaquette_tau_int"], 1.0)
                + seconds / independent,
                "hmc": hmc_point(n, shape, beta, args.hmc4, args.hmc4_steps, args.seed + 5) if args.hmc4 else None,
            }
        results.append(
            {
                "case": case,
                "group": f"SU({n})",
                "beta": beta,
                "lattice": list(shape),
                "steps_per_second": round(speed, 3),
                "planned_steps": steps,
                "curve": curve,
                "transfer": transfer,
                "cost": cost,
            }
        )
    print(
        json.dumps(
            {
                "threads": args.threads,
                "dtype": args.dtype,
                "layers": args.layers,
                "hidden": args.hidden,
                "bins": args.bins,
                "batch": args.batch,
                "lr": args.lr,
                "budget_seconds": args.budget,
                "load_average": os.getloadavg(),
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
