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
from ..config.build import build_action, build_group
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
Measurement = Callable[[torch.Tensor], dict[str, Variable]]


def _scalar(name: str, fn) -> Measurement:
    return lambda f: {name: (fn(f).cpu().numpy(), (), {})}


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
            "correlator": lambda p: {
                "correlator": (
                    zero_momentum_correlator(p).cpu().numpy(),
                    ("t",),
                    {"t": np.arange(th.lattice[0])},
                )
            },
        }
        return [table[n] for n in names]

    group = build_group(th)

    def polyakov(links):
        p = polyakov_loop(links, group).cpu().numpy()
        return {"polyakov_loop_re": (p.real.copy(), (), {}), "polyakov_loop_im": (p.imag.copy(), (), {})}

    def loops(links):
        labels = np.array([f"{r}x{t}" for r, t in me.wilson_loops])
        values = torch.stack([wilson_loop(links, group, r, t) for r, t in me.wilson_loops], dim=1)
        return {"wilson_loop": (values.cpu().numpy(), ("loop",), {"loop": labels})}

    def charge(links):
        q = topological_charge_u1_2d(links).cpu().numpy()
        return {"topological_charge": (q, (), {}), "chi_t": (q * q / volume, (), {})}

    def flow(links):
        res = gradient_flow(links, group, me.flow.t_max, me.flow.eps, me.flow.measure_every)
        coords = {"flow_time": res.times}
        out = {
            "flow_energy": (res.energy.T.copy(), ("flow_time",), coords),
            "flow_t2E": (res.t2e.T.copy(), ("flow_time",), coords),
        }
        if res.charge is not None:
            out["flow_charge"] = (res.charge.T.copy(), ("flow_time",), coords)
        return out

    table = {
        "plaquette": _scalar("plaquette", lambda u: plaquette(u, group)),
        "polyakov_loop": polyakov,
        "wilson_loops": loops,
        "topological_charge": charge,
        "flow": flow,
    }
    return [table[n] for n in names]
