"""What ``lqcdml measure`` computes for each theory: name -> per-chain values.

Each measurement maps a batch of fields ``[B, ...]`` to ``{variable: (values, dims,
coords)}`` with ``values`` of shape ``[B, *extra]`` and ``dims``/``coords`` naming the
extra axes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..config import DEFAULT_OBSERVABLES, EnsembleConfig
from ..config.build import build_action, build_fermion_operator, build_group
from ..observables.fermion import chiral_condensate, pion_correlator, trace_inverse_powers
from ..observables import (
    abs_magnetization,
    gradient_flow,
    magnetization,
    plaquette,
    polyakov_loop,
    topological_charge_u1_2d,
    two_point_susceptibility,
    wilson_loop,
    zero_momentum_correlator,
)

__all__ = ["measurement_plan", "Variable"]

Variable = tuple[np.ndarray, tuple[str, ...], dict[str, np.ndarray]]
#: (fields [B, ...], per-chain generators for stochastic estimators) -> variables
Measurement = Callable[[torch.Tensor, list], dict[str, Variable]]


def _scalar(name: str, fn) -> Measurement:
    return lambda f, gens: {name: (fn(f).cpu().numpy(), (), {})}


def measurement_plan(ens: EnsembleConfig) -> list[Measurement]:
    """The measurements an ensemble's ``measure`` section asks for, in order."""
    th, me = ens.theory, ens.measure
    names = list(me.observables) or list(DEFAULT_OBSERVABLES[th.name])
    volume = int(np.prod(th.lattice))
    plan: list[Measurement] = []
    if th.name == "phi4":
        action = build_action(th)
        table = {
            "magnetization": _scalar("magnetization", lambda p: magnetization(p) / volume),
            "abs_magnetization": _scalar("abs_magnetization", abs_magnetization),
            "chi2": _scalar("chi2", two_point_susceptibility),
            "phi2": _scalar("phi2", lambda p: p.square().reshape(p.shape[0], -1).mean(dim=1)),
            "schwinger_dyson": _scalar(
                "schwinger_dyson",
                lambda p: (p * action.force(p)).reshape(p.shape[0], -1).mean(dim=1),
            ),
            "correlator": lambda p, gens: {
                "correlator": (
                    zero_momentum_correlator(p).cpu().numpy(),
                    ("t",),
                    {"t": np.arange(th.lattice[0])},
                )
            },
        }
        return [table[n] for n in names]

    group = build_group(th)

    def polyakov(links, gens):
        p = polyakov_loop(links, group).cpu().numpy()
        return {"polyakov_loop_re": (p.real.copy(), (), {}), "polyakov_loop_im": (p.imag.copy(), (), {})}

    def loops(links, gens):
        labels = np.array([f"{r}x{t}" for r, t in me.wilson_loops])
        values = torch.stack([wilson_loop(links, group, r, t) for r, t in me.wilson_loops], dim=1)
        return {"wilson_loop": (values.cpu().numpy(), ("loop",), {"loop": labels})}

    def charge(links, gens):
        q = topological_charge_u1_2d(links).cpu().numpy()
        return {"topological_charge": (q, (), {}), "chi_t": (q * q / volume, (), {})}

    def flow(links, gens):
        res = gradient_flow(links, group, me.flow.t_max, me.flow.eps, me.flow.measure_every)
        coords = {"flow_time": res.times}
        out = {
            "flow_energy": (res.energy.T.copy(), ("flow_time",), coords),
            "flow_t2E": (res.t2e.T.copy(), ("flow_time",), coords),
        }
        if res.charge is not None:
            out["flow_charge"] = (res.charge.T.copy(), ("flow_time",), coords)
        return out

    op = build_fermion_operator(th)
    tol = ens.sampler.solver_tol

    def condensate(links, gens):
        c = chiral_condensate(op, links, gens, me.n_noise, me.noise, tol)
        return {"chiral_condensate": (c.mean(dim=1).cpu().numpy(), (), {})}

    def traces(links, gens):
        t = trace_inverse_powers(op, links, gens, 4, me.n_noise, me.noise, tol).mean(dim=1)
        coords = {"power": np.arange(1, 5)}
        return {
            "trace_inverse_re": (t.real.cpu().numpy(), ("power",), coords),
            "trace_inverse_im": (t.imag.cpu().numpy(), ("power",), coords),
        }

    def pion(links, gens):
        c = pion_correlator(op, links, tol)
        return {"pion_correlator": (c.cpu().numpy(), ("t",), {"t": np.arange(th.lattice[0])})}

    table = {
        "chiral_condensate": condensate,
        "trace_inverse": traces,
        "pion_correlator": pion,
        "plaquette": _scalar("plaquette", lambda u: plaquette(u, group)),
        "polyakov_loop": polyakov,
        "wilson_loops": loops,
        "topological_charge": charge,
        "flow": flow,
    }
    return [table[n] for n in names]
