"""Self-learning HMC: molecular dynamics on a cheap effective action, Metropolis on the true one.

The effective fermion action is a pseudofermion action at mass ``m_eff`` on links
smeared by a gauge-covariant network ``V = f(U)``:

    S_eff(U, phi) = phi^dag M_eff(f(U))^{-1} phi

(staggered, Nf = 4: even sites; any pseudofermion action of ``theories``), with the
*same* pseudofermion ``phi`` the exact action ``S_f(U, phi)`` (mass ``m``, thin links)
drew from its heat bath. At fixed ``phi`` it is the pseudofermion action pulled back
through the network (``pullback.PulledBackAction``) with no Jacobian term: ``S_eff`` is an
effective action by definition, not a change of variables, so ``log|det dV/dU|`` is not
part of it (``pullback.WithoutJacobian``). Its force is therefore the analytic force
``F_V`` of the pseudofermion action at ``V`` carried back to the thin links by one
vector-jacobian product through the network (never through a solver): with
``U -> exp(i w^a t^a) U`` and ``V -> exp(i e^a t^a) V``, ``dS = sum_a F_V^a e^a =
Re sum conj(G) dV`` with ``G = 2i F_V V``, and ``dS/dw`` is the VJP of ``G`` through ``V(w)``.

``slhmc(...)`` is HMC with this action in the molecular dynamics (fermion forces on
the outer level, the exact gauge force inside) and the exact action
``S_g + S_f(m)`` as the target of the heat bath and the Metropolis test, so the chain
samples ``exp(-S_g - S_f)`` exactly for any frozen network.

``slhmc_hasenbusch(...)`` puts the network where the cost is: the light determinant split
at Hasenbusch masses (``samplers.hasenbusch``), the molecular dynamics integrates the heavy
factor and the heavier ratios exactly and only the lightest ratio ``ratio(m, m_1)`` through
an effective ratio (``effective(ratio)``: e.g. ``ratio(m_eff, m_1)`` on smeared links). The
mismatch is then the ratio's, not the whole light action's: the network has to track the
part of the determinant between ``m`` and ``m_1`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

import torch

from ..lattice.random import Generators
from ..theories import Action, PseudofermionAction
from .hasenbusch import hasenbusch_levels
from .hmc import HMC
from .integrators import Integrator, Level
from .pullback import PulledBackAction, WithoutJacobian

__all__ = ["SmearedPseudofermion", "slhmc", "slhmc_hasenbusch"]

#: links -> smeared links (a gauge-covariant network), shapes ``[B, d, L..., N, N]``
Smearing = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class SmearedPseudofermion(PseudofermionAction):
    """``base`` (a pseudofermion action, for SLHMC at ``m_eff``) on the links ``smear(U)``.

    ``smear = None``: the thin links (self-learning HMC without a network). The network's
    weights are used as they are (frozen for a production chain: it is called under
    ``torch.no_grad`` except to carry the force back). At fixed ``phi`` the action and
    force are those of ``pulled_back(phi)``.
    """

    base: PseudofermionAction
    smear: Smearing | None = None

    @property
    def group(self):
        return self.base.group

    def smeared(self, links: torch.Tensor) -> torch.Tensor:
        """``V = smear(U)`` without an autograd graph."""
        if self.smear is None:
            return links
        with torch.no_grad():
            return self.smear(links)

    def heat_bath(self, links: torch.Tensor, gens: Generators) -> torch.Tensor:
        return self.base.heat_bath(self.smeared(links), gens)

    def pulled_back(self, phi: torch.Tensor) -> PulledBackAction:
        """``base`` at the field ``phi`` pulled back through the smearing (``smear = None``: the
        identity), without a Jacobian term: SLHMC's effective action has none."""
        return PulledBackAction(self.base.bind(phi), WithoutJacobian(_thin if self.smear is None else self.smear))

    def action(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``S_eff = base(smear(U), phi)``, ``[B]``, without an autograd graph (thin links: ``base``'s)."""
        if self.smear is None:
            return self.base.action(links, phi)
        with torch.no_grad():
            return self.pulled_back(phi).action(links)

    def force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """``dS_eff/dw`` at the thin links: the analytic force at ``V``, then one VJP (thin links:
        ``base``'s force)."""
        if self.smear is None:
            return self.base.force(links, phi)
        return self.pulled_back(phi).force(links)


def _thin(links: torch.Tensor) -> torch.Tensor:
    """The identity smearing (thin links)."""
    return links


def slhmc(
    gauge: Action,
    exact: Sequence[PseudofermionAction],
    effective: Sequence[PseudofermionAction],
    n_steps: int,
    gauge_steps: int = 1,
    scheme: str = "omelyan",
    trajectory_length: float = 1.0,
) -> HMC:
    """Self-learning HMC: MD on ``gauge + effective`` (fermions outside, ``n_steps``; gauge
    inside, ``gauge_steps`` per outer position update), heat bath and Metropolis on
    ``gauge + exact``. ``effective[i]`` shares the pseudofermion field of ``exact[i]``."""
    exact, effective = tuple(exact), tuple(effective)
    if len(exact) != len(effective) or not exact:
        raise ValueError(
            f"slhmc: {len(exact)} exact and {len(effective)} effective pseudofermion terms; "
            "allowed: the same number, at least one (they share the fields)"
        )
    levels = (Level(effective, n_steps, scheme), Level((gauge,), gauge_steps, scheme))
    return HMC(Integrator(gauge.group, levels), trajectory_length, target=(gauge, *exact))


def slhmc_hasenbusch(
    gauge: Action,
    light: Sequence[PseudofermionAction],
    masses: Sequence[float],
    effective: Callable[[PseudofermionAction], PseudofermionAction],
    n_steps: int,
    steps: Sequence[int],
    gauge_steps: int = 1,
    scheme: str = "omelyan",
    trajectory_length: float = 1.0,
) -> HMC:
    """Self-learning HMC on the lightest Hasenbusch ratio: the levels of ``hasenbusch_levels``
    with each term of level 0 (``ratio(m, m_1)``) replaced by ``effective(term)`` in the
    molecular dynamics; heat bath and Metropolis on the exact split action. The fields of the
    exact ratios come first in the target (the effective terms share them)."""
    exact = hasenbusch_levels(gauge, light, masses, n_steps, steps, gauge_steps, scheme)
    ratios = cast(tuple[PseudofermionAction, ...], exact[0].terms)  # level 0: the lightest ratios
    md = (replace(exact[0], terms=tuple(effective(t) for t in ratios)), *exact[1:])
    target = (gauge, *(t for level in exact[:-1] for t in level.terms))
    return HMC(Integrator(gauge.group, md), trajectory_length, target=target)
