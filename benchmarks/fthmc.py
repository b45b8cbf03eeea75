"""Field-transformed HMC beside HMC in 2D U(1): topological charge autocorrelation and cost.

At ``--beta`` (6) on ``--L`` x ``--L`` (16), the point where HMC's charge freezes
(``paper_flow_u1``), both samplers run ``--chains`` chains for ``--trajectories`` trajectories
after ``--therm`` from a cold (``Q = 0``, default) or hot ``--start``, in one process, same dtype and
threads, advanced side by side in alternating blocks of ``--block`` trajectories:

* HMC with ``--hmc-steps`` Omelyan steps per unit trajectory;
* field-transformed HMC (``samplers.FieldTransformedHMC``) with ``--ft-steps`` steps, through
  ``--layers`` masked stout layers (``nn.masked_stout.masked_stout_flow``: uniform prior, the
  written-out pulled-back force) trained first by reverse
  KL for ``--train-steps`` steps of batch ``--batch`` (the training seconds are reported and
  charged to its cost).

Reported per sampler: acceptance, plaquette and ``<Q^2>`` with Gamma-method errors beside the
exact finite-volume values and their pulls, ``tau_int`` of ``Q^2`` and of the plaquette (per
trajectory; pyerrors, S = 2), a drift check (``<Q^2>`` of the two halves of the kept
trajectories: their difference in units of its error), the fraction of trajectories that change
the integer charge of a chain (the tunnelling rate, meaningful where ``tau_int`` is not resolved), seconds per trajectory (all chains
advance together; per chain), and seconds per independent configuration ``2 tau_int(Q^2)
seconds/trajectory`` (for FT-HMC plus training seconds spread over the independent
configurations of this run). Beside them, ``force_ms``: one force evaluation of each (HMC's
Wilson force; the pulled-back force through the compiled kernel and through the torch layers),
interleaved. Prints JSON.

    python benchmarks/fthmc.py                                   # beta 6, L 16
    python benchmarks/fthmc.py --beta 3 --L 16 --trajectories 400 --train-steps 200
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from lqcdml.analysis.errors import estimate
from lqcdml.analysis.exact import u1_2d_plaquette, u1_2d_topological_susceptibility
from lqcdml.lattice import U1, make_generators
from lqcdml.nn.masked_stout import masked_stout_flow
from lqcdml.nn.prior import cast_precision
from lqcdml.observables import plaquette
from lqcdml.observables.gauge import topological_charge_u1_2d
from lqcdml.samplers import HMC, FieldTransformedHMC, Integrator, run_chain
from lqcdml.theories import WilsonGaugeAction
from lqcdml.train import FlowTrainer


def _run_side_by_side(
    samplers: dict, group, shape, chains: int, therm: int, trajectories: int, seed: int, start: str, block: int
) -> dict[str, dict]:
    """Every sampler's chains, advanced in alternating blocks of ``block`` trajectories (so that
    the machine's load falls alike on all of them), the time of each block charged to its
    sampler; their records joined."""

    def first(gens):
        if start == "hot":
            return group.haar(gens, (2, *shape))
        return group.identity((len(gens), 2, *shape))

    def measure(u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"plaq": plaquette(u, group), "q": topological_charge_u1_2d(u)}

    states, seconds, records = {}, dict.fromkeys(samplers, 0.0), {name: [] for name in samplers}
    for name, sampler in samplers.items():
        states[name] = sampler.start(make_generators(seed, chains), first)
        states[name], _ = run_chain(sampler, states[name], therm)
    for done in range(0, trajectories, block):
        for name, sampler in samplers.items():
            t0 = time.perf_counter()
            states[name], rec = run_chain(sampler, states[name], min(block, trajectories - done), measure=measure)
            seconds[name] += time.perf_counter() - t0
            records[name].append(rec)
    return {
        name: _summary({k: torch.cat([r[k] for r in records[name]]) for k in records[name][0]}, seconds[name])
        for name in samplers
    }


def _summary(rec: dict[str, torch.Tensor], seconds: float) -> dict:
    trajectories = rec["q"].shape[0]
    q2 = rec["q"].to(torch.float64).numpy() ** 2
    plaq = rec["plaq"].to(torch.float64).numpy()
    half = trajectories // 2
    first, second = estimate(q2[:half], "a"), estimate(q2[half:], "b")
    out = {
        "acceptance": float(rec["accepted"].to(torch.float64).mean()),
        "exp_minus_dH": float(torch.exp(-rec["delta_H"].to(torch.float64)).mean()),
        "seconds_per_trajectory": seconds / trajectories,
        "plaquette": estimate(plaq),
        "q2": estimate(q2),
        "q2_drift_sigma": (second.value - first.value) / math.hypot(first.error, second.error),
        "charge_changes_per_trajectory": float(np.mean(np.abs(np.diff(np.rint(rec["q"].numpy()), axis=0)) > 0)),
    }
    return out


def _force_timings(model, action, group, shape, chains: int, dtype: torch.dtype, rounds: int = 30) -> dict:
    """Milliseconds of one force evaluation at Haar-random fields ``[chains, 2, L, L]``: HMC's
    (the Wilson force), and field-transformed HMC's pulled-back force through the compiled kernel
    and through the torch layers (``LQCDML_KERNELS=torch``), interleaved; medians of ``rounds``."""
    import os

    theta = group.haar(make_generators(7, chains), (2, *shape)).to(dtype)
    calls = {
        "wilson_force": lambda: action.force(theta),
        "pullback_force_kernel": lambda: model.pullback_force(theta, action.force),
        "pullback_force_torch": lambda: model.pullback_force(theta, action.force),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    before = os.environ.get("LQCDML_KERNELS")
    try:
        for _ in range(rounds):
            for name, call in calls.items():
                os.environ["LQCDML_KERNELS"] = "torch" if name.endswith("_torch") else "auto"
                t0 = time.perf_counter()
                for _ in range(10):
                    call()
                times[name].append((time.perf_counter() - t0) / 10 * 1e3)
    finally:
        if before is None:
            os.environ.pop("LQCDML_KERNELS", None)
        else:
            os.environ["LQCDML_KERNELS"] = before
    return {name: float(np.median(values)) for name, values in times.items()}


def _as_json(result: dict, exact_plaq: float, exact_q2: float) -> dict:
    plaq, q2 = result.pop("plaquette"), result.pop("q2")
    result.update(
        plaquette={
            "value": plaq.value,
            "error": plaq.error,
            "exact": exact_plaq,
            "pull": plaq.pull(exact_plaq),
            "tau_int": plaq.tau_int,
        },
        q2={"value": q2.value, "error": q2.error, "exact": exact_q2, "pull": q2.pull(exact_q2), "tau_int": q2.tau_int},
    )
    result["seconds_per_independent"] = 2 * q2.tau_int * result["seconds_per_trajectory"]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beta", type=float, default=6.0)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--chains", type=int, default=16)
    ap.add_argument("--therm", type=int, default=100)
    ap.add_argument("--trajectories", type=int, default=1000)
    ap.add_argument("--hmc-steps", type=int, default=8)
    ap.add_argument("--ft-steps", type=int, default=8)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--block", type=int, default=50, help="trajectories per sampler in turn (the load falls alike)")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", choices=("cold", "hot"), default="cold")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    group, shape = U1(), (args.L, args.L)
    action = WilsonGaugeAction(args.beta, group)
    volume = args.L * args.L
    exact_plaq = u1_2d_plaquette(args.beta, volume)
    exact_q2 = volume * u1_2d_topological_susceptibility(args.beta, volume)

    model = cast_precision(masked_stout_flow(shape, group, args.layers), args.dtype)
    start = time.perf_counter()
    trainer = FlowTrainer(model, action.action, args.train_steps, args.batch, args.lr, seed=args.seed)
    for _ in range(args.train_steps):
        trainer.step()
    train_seconds = time.perf_counter() - start
    model.requires_grad_(False).eval()
    rho = [float(layer.rho) for layer in model.layers]

    common = dict(
        chains=args.chains, therm=args.therm, trajectories=args.trajectories, seed=args.seed, start=args.start
    )
    hmc = HMC(Integrator.single(action, args.hmc_steps, "omelyan"), 1.0)
    ft = FieldTransformedHMC(action, model, args.ft_steps, "omelyan", 1.0)
    runs = _run_side_by_side({"hmc": hmc, "fthmc": ft}, group, shape, **common, block=args.block)
    results = {name: _as_json(run, exact_plaq, exact_q2) for name, run in runs.items()}
    independent = args.chains * args.trajectories / (2 * results["fthmc"]["q2"]["tau_int"])
    results["fthmc"]["training_seconds"] = train_seconds
    results["fthmc"]["seconds_per_independent_with_training"] = (
        results["fthmc"]["seconds_per_independent"] + train_seconds / independent
    )
    results["fthmc"]["rho"] = rho
    results["fthmc"]["final_loss"] = trainer.history["loss"][-1]
    ratio = {
        "tau_int_q2_hmc_over_fthmc": results["hmc"]["q2"]["tau_int"] / results["fthmc"]["q2"]["tau_int"],
        "cost_per_trajectory_fthmc_over_hmc": results["fthmc"]["seconds_per_trajectory"]
        / results["hmc"]["seconds_per_trajectory"],
        "cost_per_independent_fthmc_over_hmc": results["fthmc"]["seconds_per_independent_with_training"]
        / results["hmc"]["seconds_per_independent"],
    }
    forces = _force_timings(model, action, group, shape, args.chains, getattr(torch, args.dtype))
    output = {"args": vars(args), "threads": torch.get_num_threads(), **results, "ratios": ratio, "force_ms": forces}
    print(json.dumps(output, indent=1))


if __name__ == "__main__":
    main()
