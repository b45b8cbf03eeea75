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
  charged to its cost);
* with ``--cask-layers`` > 0, field-transformed HMC (``fthmc_cask``) through that many masked CASK
  layers (``nn.masked_cask``: attention-weighted staples, ``--heads`` heads; the pulled-back force
  by autograd) trained alike, with ``--cask-steps`` steps.

Reported per sampler: acceptance, plaquette and ``<Q^2>`` with Gamma-method errors beside the
exact finite-volume values and their pulls, ``tau_int`` of ``Q^2``, of ``Q`` and of the plaquette
(per trajectory; pyerrors, S = 2), a drift check (``<Q^2>`` of the two halves of the kept
trajectories: their difference in units of its error), the fraction of trajectories that change
the integer charge of a chain (the tunnelling rate, meaningful where ``tau_int`` is not resolved), seconds per trajectory (all chains
advance together; per chain), and seconds per independent configuration ``2 tau_int(Q^2)
seconds/trajectory`` (for FT-HMC plus training seconds spread over the independent
configurations of this run). Beside them, ``force_ms``: one force evaluation of each (HMC's
Wilson force; the pulled-back stout force through the compiled kernel and through the torch
layers by autograd, the CASK force by autograd), interleaved. Prints JSON.

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
from lqcdml.nn.masked_cask import masked_cask_flow
from lqcdml.nn.masked_stout import masked_stout_flow
from lqcdml.nn.prior import cast_precision
from lqcdml.nn.transform import Compose
from lqcdml.observables import plaquette
from lqcdml.observables.gauge import topological_charge_u1_2d
from lqcdml.samplers import HMC, FieldTransformedHMC, Integrator, PulledBackAction, run_chain
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
    q = rec["q"].to(torch.float64).numpy()
    q2 = q**2
    plaq = rec["plaq"].to(torch.float64).numpy()
    half = trajectories // 2
    first, second = estimate(q2[:half], "a"), estimate(q2[half:], "b")
    out = {
        "acceptance": float(rec["accepted"].to(torch.float64).mean()),
        "exp_minus_dH": float(torch.exp(-rec["delta_H"].to(torch.float64)).mean()),
        "seconds_per_trajectory": seconds / trajectories,
        "plaquette": estimate(plaq),
        "q2": estimate(q2),
        # Q itself: <Q> = 0 by symmetry, its tau_int the slowest (the sign of the charge)
        "q_tau_int": estimate(q).tau_int,
        "q2_drift_sigma": (second.value - first.value) / math.hypot(first.error, second.error),
        "charge_changes_per_trajectory": float(np.mean(np.abs(np.diff(np.rint(q), axis=0)) > 0)),
    }
    return out


def _force_timings(model, cask, action, group, shape, chains: int, dtype: torch.dtype, rounds: int = 30) -> dict:
    """Milliseconds of one force evaluation at Haar-random fields ``[chains, 2, L, L]``: HMC's
    (the Wilson force), and field-transformed HMC's pulled-back force through the compiled kernel,
    the written-out force of the torch layers (``LQCDML_KERNELS=torch``), autograd through the
    stout layers and (``cask`` not None) through the CASK layers, interleaved; medians of
    ``rounds``."""
    import os

    theta = group.haar(make_generators(7, chains), (2, *shape)).to(dtype)
    calls = {
        "wilson_force": lambda: action.force(theta),
        "pullback_force_kernel": lambda: model.pullback_force(theta, action.force),
        "pullback_force_torch": lambda: model.pullback_force(theta, action.force),
        "pullback_force_autograd": lambda: PulledBackAction(action, Compose(list(model.layers))).force(theta),
    }
    if cask is not None:
        calls["pullback_force_cask_autograd"] = lambda: PulledBackAction(action, cask).force(theta)
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
    ap.add_argument("--cask-layers", type=int, default=0, help="masked CASK layers (0: no CASK transform)")
    ap.add_argument("--cask-steps", type=int, default=None, help="its FT-HMC steps (default --ft-steps)")
    ap.add_argument("--heads", type=int, default=2)
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

    def trained(flow):
        flow = cast_precision(flow, args.dtype)
        start = time.perf_counter()
        trainer = FlowTrainer(flow, action.action, args.train_steps, args.batch, args.lr, seed=args.seed)
        for _ in range(args.train_steps):
            trainer.step()
        flow.requires_grad_(False).eval()
        return flow, time.perf_counter() - start, trainer.history["loss"][-1]

    transforms = {"fthmc": (*trained(masked_stout_flow(shape, group, args.layers)), args.ft_steps)}
    if args.cask_layers:
        cask_flow = masked_cask_flow(shape, group, args.cask_layers, args.heads)
        transforms["fthmc_cask"] = (*trained(cask_flow), args.cask_steps or args.ft_steps)
    model = transforms["fthmc"][0]

    common = dict(
        chains=args.chains, therm=args.therm, trajectories=args.trajectories, seed=args.seed, start=args.start
    )
    samplers = {"hmc": HMC(Integrator.single(action, args.hmc_steps, "omelyan"), 1.0)}
    for name, (flow, _, _, steps) in transforms.items():
        samplers[name] = FieldTransformedHMC(action, flow, steps, "omelyan", 1.0)
    runs = _run_side_by_side(samplers, group, shape, **common, block=args.block)
    results = {name: _as_json(run, exact_plaq, exact_q2) for name, run in runs.items()}
    ratio = {}
    for name, (_, train_seconds, final_loss, _) in transforms.items():
        independent = args.chains * args.trajectories / (2 * results[name]["q2"]["tau_int"])
        results[name]["training_seconds"] = train_seconds
        results[name]["seconds_per_independent_with_training"] = (
            results[name]["seconds_per_independent"] + train_seconds / independent
        )
        results[name]["final_loss"] = final_loss
        suffix = name.removeprefix("fthmc")
        ratio |= {
            f"tau_int_q2_hmc_over_fthmc{suffix}": results["hmc"]["q2"]["tau_int"] / results[name]["q2"]["tau_int"],
            f"cost_per_trajectory_fthmc{suffix}_over_hmc": results[name]["seconds_per_trajectory"]
            / results["hmc"]["seconds_per_trajectory"],
            f"cost_per_independent_fthmc{suffix}_over_hmc": results[name]["seconds_per_independent_with_training"]
            / results["hmc"]["seconds_per_independent"],
        }
    results["fthmc"]["rho"] = [float(layer.rho) for layer in model.layers]
    cask = transforms["fthmc_cask"][0] if "fthmc_cask" in transforms else None
    forces = _force_timings(model, cask, action, group, shape, args.chains, getattr(torch, args.dtype))
    output = {"args": vars(args), "threads": torch.get_num_threads(), **results, "ratios": ratio, "force_ms": forces}
    print(json.dumps(output, indent=1))


if __name__ == "__main__":
    main()
