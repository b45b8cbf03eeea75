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

The case ``su3_4d`` is issue 29's 4D target: SU(3) on ``--size4``^4 at beta = 1, acceptance >= 0.3.
There is no exact ``ln Z`` in 4D: its points give the mean log weight per plaquette (which the
training raises towards ``-ln Z`` per plaquette) and the strong-coupling plaquette
(``analysis.exact.strong_coupling_plaquette``) beside the reweighted one.

    python benchmarks/su_flow_training.py                          # both cases, 1800 s each
    python benchmarks/su_flow_training.py --cases su2 --budget 600 --threads 1
    python benchmarks/su_flow_training.py --cases su3_4d --layers 48 --hidden 8 --batch 16
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import torch

from lqcdml import observables
from lqcdml.analysis.exact import strong_coupling_plaquette
from lqcdml.analysis.exact_sun_2d import su_n_2d_log_z, su_n_2d_plaquette
from lqcdml.lattice import SU
from lqcdml.nn.prior import cast_precision
from lqcdml.nn.su_equivariant import su_flow
from lqcdml.samplers.flow_mcmc import effective_sample_size, independence_acceptance
from lqcdml.theories import WilsonGaugeAction
from lqcdml.train import FlowTrainer

#: case: (N, beta, dimensions); 2D cases have the exact ln Z and plaquette of the character
#: expansion, the 4D one the strong-coupling plaquette (valid at small beta) and no ln Z
CASES = {"su2": (2, 4.0, 2), "su3": (3, 6.0, 2), "su3_4d": (3, 1.0, 4)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@torch.no_grad()
def evaluate(model, action, n: int, shape: tuple[int, ...], beta: float, samples: int, seed: int) -> dict:
    """Fresh float64 samples: acceptance, ESS, the reweighted plaquette; in 2D the KL per plaquette
    and the exact plaquette, in 4D the mean log weight per plaquette (``-KL - ln Z``, per plaquette)
    and the strong-coupling plaquette."""
    model = cast_precision(copy.deepcopy(model), torch.float64)
    group = SU(n)
    gen = torch.Generator().manual_seed(seed)
    log_w, plaq = [], []
    for start in range(0, samples, 500):
        x, log_q = model.sample(min(500, samples - start), gen)
        log_w.append(-(action(x) + log_q))
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
    return point


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--size", type=int, default=8, help="2D lattice extent")
    parser.add_argument("--size4", type=int, default=4, help="4D lattice extent")
    parser.add_argument(
        "--transfer", type=int, default=16, help="2D lattice size the trained weights are evaluated on (0: none)"
    )
    parser.add_argument(
        "--transfer4", type=int, default=0, help="the same in 4D (a multiple of 4: su_flow's masks; 0: none)"
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
    for case in args.cases:
        n, beta, dims = CASES[case]
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
                    args.samples // 2,
                    args.seed + 2,
                ),
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
