"""Networks trained at the target volume against the floor: how much of the thin effective
action's mismatch a trained gauge-covariant network removes, and how far it stays above the
bound no network passes; prints one JSON document.

SU(2), staggered N_f = 4, one lattice, light mass ``m`` and ``m_eff``. Hasenbusch HMC
(``--therm-mass``, 3 outer steps) thermalises ``--chains`` chains from near the identity and
records configurations ``--gap`` trajectories apart; the first ``--train`` of them (taken
round the chains) train, the rest test. Per network of ``--networks`` (``stout:L`` L stout
layers of plaquette and Polyakov staples, ``stout_rect:L`` with rectangles too, ``cask:L`` L
CASK blocks), trained by ``OfflineSLHMCTrainer`` (centred loss, ``--batch``, ``--steps`` Adam
steps at ``--lr``) on the training configurations; on the test configurations, each with
``--draws`` pseudofermions from the exact heat bath:

- ``var_d``: the variance of the mismatch ``d = S_f(m; U) - S_f(m_eff; f(U))`` (a constant
  is free, so centred by its mean over all draws), with the standard error over
  configurations; for the thin links (no network) and each trained network;
- the floor of ``var(d)`` below which no effective action at ``m_eff`` on any smeared links
  goes (``analysis.slhmc_floor.mismatch_floor``, the dense spectrum of every test
  configuration) and the thin action's field part (``thin_field_variance``);
- the acceptance: one SLHMC trajectory (``--slhmc-steps`` Omelyan steps, the network frozen)
  from each test configuration (``train.slhmc.equilibrium_acceptance``: the chain's
  acceptance at equilibrium) beside the Gaussian prediction ``erfc(sqrt(var_d) / 2)``.

``removed`` = (thin - trained) / (thin - floor): the share of what any network could remove
that the trained one did.

Usage: ``python benchmarks/slhmc_trained.py [--lattice 6] [--mass 0.05] [--m-eff 0.1]
[--networks stout:4 stout_rect:4 cask:2] [--steps 200] [--threads 1] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lqcdml.analysis.slhmc_floor import gaussian_acceptance, mismatch_floor, modes_below, thin_field_variance
from lqcdml.lattice import SU
from lqcdml.nn import cask_net, stout_net
from lqcdml.observables.fermion import staggered_even_spectrum
from lqcdml.samplers.slhmc import SmearedPseudofermion, slhmc
from lqcdml.train.slhmc import OfflineSLHMCTrainer, equilibrium_acceptance

sys.path.insert(0, str(Path(__file__).parent))
from slhmc_setup import GROUP, gauge_action, hasenbusch, header, mismatch_draws, pseudofermion, start_fields  # noqa: E402  (the shared set-up)


def network(spec: str, group: SU, dim: int) -> torch.nn.Module:
    """``stout:L``, ``stout_rect:L`` or ``cask:L`` (see the module docstring), weights zero."""
    kind, _, layers = spec.partition(":")
    if not layers.isdigit() or int(layers) < 1:
        raise SystemExit(f"--networks entry {spec!r}; allowed: stout:L, stout_rect:L or cask:L with L >= 1")
    n = int(layers)
    if kind == "stout":
        return stout_net(group, dim, n, ("plaquette", "polyakov"))
    if kind == "stout_rect":
        return stout_net(group, dim, n, ("plaquette", "rectangle", "polyakov"))
    if kind == "cask":
        return cask_net(group, dim, n, ("plaquette", "polyakov"))
    raise SystemExit(f"--networks entry {spec!r}; allowed: stout:L, stout_rect:L or cask:L")


@torch.no_grad()
def mismatch_variance(light, eff, configs: torch.Tensor, draws: int, seed: int) -> dict:
    """``var(d)`` over ``configs`` x ``draws`` heat-bath fields (module docstring)."""
    d = mismatch_draws(light, eff, configs, [seed + k for k in range(draws)]).T.double()  # [configs, draws]
    per_config = ((d - d.mean()) ** 2).mean(dim=1)
    return {
        "var_d": float(per_config.mean()),
        "var_d_error": float(per_config.std() / per_config.numel() ** 0.5),
        "mean_d": float(d.mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lattice", type=int, default=6, help="extent of the L^4 lattice")
    ap.add_argument("--mass", type=float, default=0.05)
    ap.add_argument("--m-eff", type=float, default=0.1)
    ap.add_argument("--beta", type=float, default=2.0)
    ap.add_argument("--networks", nargs="+", default=["stout:4", "stout_rect:4", "cask:2"])
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--therm", type=int, default=24)
    ap.add_argument("--therm-mass", type=float, default=0.3)
    ap.add_argument("--records", type=int, default=8, help="configurations recorded per chain")
    ap.add_argument("--gap", type=int, default=2, help="trajectories between recorded configurations")
    ap.add_argument("--train", type=int, default=24, help="configurations that train (the rest test)")
    ap.add_argument("--steps", type=int, default=200, help="Adam steps per network")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--draws", type=int, default=4, help="pseudofermions per test configuration")
    ap.add_argument("--slhmc-steps", type=int, default=6)
    ap.add_argument("--gauge-steps", type=int, default=4)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--quick", action="store_true", help="a tiny run that checks the script")
    args = ap.parse_args()
    if args.quick:
        args.lattice, args.chains, args.therm, args.records, args.train = 2, 2, 2, 3, 4
        args.steps, args.draws, args.networks = 3, 2, ["stout:1", "cask:1"]
    if not 0 < args.train < args.chains * args.records:
        raise SystemExit(f"--train = {args.train}; allowed: 1 .. {args.chains * args.records - 1}")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    group, gauge = GROUP, gauge_action(args.beta)
    light, base_eff = pseudofermion(args.mass, args.tol), pseudofermion(args.m_eff, args.tol)
    generator = hasenbusch(gauge, light, args.therm_mass, 3, args.gauge_steps)
    state = generator.init(start_fields(args.seed, args.chains, args.lattice), seed=args.seed + 1)
    accepted, records = [], []
    with torch.no_grad():
        for k in range(args.therm + args.records * args.gap):
            state, info = generator.step(state)
            accepted.append(float(info.accept_prob.mean()))
            if k >= args.therm and (k - args.therm + 1) % args.gap == 0:
                records.append(state.fields)
    configs = torch.stack(records, dim=1).flatten(0, 1)  # chain-major: [chains * records, ...]
    order = torch.cat([torch.arange(r, configs.shape[0], args.records) for r in range(args.records)])
    configs = configs[order]  # round the chains, so training and test both span every chain
    train, test = configs[: args.train], configs[args.train :]
    generation_seconds = time.perf_counter() - t0

    ts = time.perf_counter()
    mu2 = staggered_even_spectrum(light.operator, test)
    spectrum_seconds = time.perf_counter() - ts
    floor = mismatch_floor(mu2, args.mass, args.m_eff)

    def evaluate(net: torch.nn.Module | None) -> dict:
        eff = SmearedPseudofermion(base_eff, net)
        row = mismatch_variance(light, eff, test, args.draws, args.seed + 100)
        sampler = slhmc(gauge, [light], [eff], args.slhmc_steps, args.gauge_steps, "omelyan", 1.0)
        acc = equilibrium_acceptance(sampler, test, args.seed + 200)
        return {
            **row,
            "predicted_acceptance": gaussian_acceptance(row["var_d"]),
            "acceptance": acc["acceptance"],
            "acceptance_error": acc["acceptance_error"],
            "mean_exp_minus_delta_H": acc["mean_exp_minus_delta_H"],
        }

    thin = evaluate(None)
    rows = []
    for spec in args.networks:
        net = network(spec, group, 4)
        trainer = OfflineSLHMCTrainer(net, train, [light], [base_eff], batch=args.batch, lr=args.lr, seed=args.seed)
        tt = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        train_seconds = time.perf_counter() - tt
        net = net.eval().requires_grad_(False)
        row = evaluate(net)
        span = thin["var_d"] - floor
        loss = trainer.history["loss"]
        rows.append(
            {
                "network": spec,
                "parameters": sum(p.numel() for p in net.parameters()),
                **row,
                "removed": (thin["var_d"] - row["var_d"]) / span if span > 0 else None,
                "train_seconds": train_seconds,
                "loss_first": float(np.mean(loss[: max(1, len(loss) // 10)])),
                "loss_last": float(np.mean(loss[-max(1, len(loss) // 10) :])),
            }
        )
    print(
        json.dumps(
            {
                **header("slhmc_trained", args.threads, args.beta),
                "lattice": [args.lattice] * 4,
                "mass": args.mass,
                "m_eff": args.m_eff,
                "configurations": {"train": int(train.shape[0]), "test": int(test.shape[0])},
                "generator_acceptance": float(np.mean(accepted[args.therm :])),
                "steps": args.steps,
                "batch": args.batch,
                "lr": args.lr,
                "draws": args.draws,
                "floor": floor,
                "thin_field_var": thin_field_variance(mu2, args.mass, args.m_eff),
                "modes_below_m_eff": modes_below(mu2, args.mass, args.m_eff),
                "lowest_mu2": float(mu2[:, 0].mean()),
                "floor_acceptance": gaussian_acceptance(floor),
                "thin": thin,
                "networks": rows,
                "generation_seconds": generation_seconds,
                "spectrum_seconds": spectrum_seconds,
                "wall_seconds": time.perf_counter() - t0,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
