"""Gradient (Wilson) flow: ``dV/dt = -g_0^2 (d S_W) V``, Luescher's conventions.

With ``S_1 = sum_P Re tr(1 - V_P)`` (the Wilson action at ``beta = N``; at
``beta = 1`` for U(1)) and this package's Lie derivative, the flow is
``dV/dt = -i F(V) V`` with ``F`` the force of ``S_1``: the action never increases.

Integrator: Luescher's third-order commutator-free Runge-Kutta scheme
(arXiv:1006.4518, appendix C), with ``Z_i = -eps F(W_i)``:

    W_1 = exp(Z_0 / 4) W_0
    W_2 = exp(8/9 Z_1 - 17/36 Z_0) W_1
    V(t + eps) = exp(3/4 Z_2 - 8/9 Z_1 + 17/36 Z_0) W_2

(``exp(Z)`` meaning ``exp(i Z)`` in the hermitian representation). Global error
``O(eps^3)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..lattice import SU, GaugeGroup
from ..theories import WilsonGaugeAction
from .gauge import energy_density, topological_charge

__all__ = ["flow_action", "flow_step_rk3", "flow_step_euler", "gradient_flow", "FlowResult", "scale_t0"]


def flow_action(group: GaugeGroup) -> WilsonGaugeAction:
    """The action that generates the flow: Wilson at ``beta = N`` (U(1): ``beta = 1``)."""
    return WilsonGaugeAction(float(group.n), group)


def flow_step_rk3(links: torch.Tensor, group: GaugeGroup, eps: float) -> torch.Tensor:
    """One third-order Runge-Kutta step of size ``eps``."""
    force = flow_action(group).force
    z0 = -force(links)
    w1 = group.update(links, z0, eps / 4)
    z1 = -force(w1)
    w2 = group.update(w1, (8 / 9) * z1 - (17 / 36) * z0, eps)
    z2 = -force(w2)
    return group.update(w2, 0.75 * z2 - (8 / 9) * z1 + (17 / 36) * z0, eps)


def flow_step_euler(links: torch.Tensor, group: GaugeGroup, eps: float) -> torch.Tensor:
    """One first-order (Euler) step; for comparisons only."""
    return group.update(links, -flow_action(group).force(links), eps)


@dataclass(frozen=True)
class FlowResult:
    """Flow history; every array is ``[n_times, B]`` except ``times`` ``[n_times]``."""

    times: np.ndarray
    energy: np.ndarray
    charge: np.ndarray | None
    links: torch.Tensor

    @property
    def t2e(self) -> np.ndarray:
        """``t^2 E(t)``."""
        return self.times[:, None] ** 2 * self.energy


def gradient_flow(
    links: torch.Tensor,
    group: GaugeGroup,
    t_max: float,
    eps: float = 0.01,
    measure_every: int = 1,
    step: Callable[[torch.Tensor, GaugeGroup, float], torch.Tensor] = flow_step_rk3,
) -> FlowResult:
    """Flow ``links`` to ``t_max`` with step ``eps``, measuring ``E(t)`` (and ``Q(t)`` in 4D SU(N)).

    Measurements at ``t = 0`` and after every ``measure_every`` steps; the last step
    is shortened so the flow ends exactly at ``t_max``.
    """
    if not eps > 0 or not t_max >= 0:
        raise ValueError(f"gradient_flow: eps = {eps}, t_max = {t_max}; allowed: eps > 0, t_max >= 0")
    with_charge = links.shape[1] == 4 and isinstance(group, SU)
    times, energy, charge = [0.0], [energy_density(links, group)], []
    if with_charge:
        charge.append(topological_charge(links, group))
    t, n = 0.0, 0
    while t < t_max - 1e-12:
        h = min(eps, t_max - t)
        links = step(links, group, h)
        t += h
        n += 1
        if n % measure_every == 0 or t >= t_max - 1e-12:
            times.append(t)
            energy.append(energy_density(links, group))
            if with_charge:
                charge.append(topological_charge(links, group))
    return FlowResult(
        times=np.asarray(times),
        energy=torch.stack(energy).cpu().numpy(),
        charge=torch.stack(charge).cpu().numpy() if with_charge else None,
        links=links,
    )


def scale_t0(times: Sequence[float], t2e: Sequence[float], target: float = 0.3) -> float:
    """Flow time where ``t^2 E(t)`` first reaches ``target`` (0.3 defines ``t_0``).

    Linear interpolation between the bracketing measurements; ``ValueError`` if the
    flow never reaches the target.
    """
    t = np.asarray(times, dtype=float)
    y = np.asarray(t2e, dtype=float)
    above = np.nonzero(y >= target)[0]
    if above.size == 0 or above[0] == 0:
        raise ValueError(
            f"scale_t0: t^2 E(t) never crosses {target} on [{t[0]}, {t[-1]}] (max {y.max():.4g}); flow longer"
        )
    i = above[0]
    return float(t[i - 1] + (target - y[i - 1]) * (t[i] - t[i - 1]) / (y[i] - y[i - 1]))
