"""Hybrid Monte Carlo with an exact Metropolis test, for a batch of independent chains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import torch

from ..lattice import Manifold, make_generators, rand
from ..lattice.random import Generators
from ..solvers import count_iterations
from ..theories import Action, PseudofermionAction
from .contract import StartFields, StepInfo
from .integrators import Integrator, Term, bind_terms
from .state import ChainState

__all__ = ["HMC", "metropolis_accept"]


def metropolis_accept(delta_h: torch.Tensor, gens: Generators) -> torch.Tensor:
    """Exact Metropolis test: accept with probability ``min(1, exp(-dH))``.

    One uniform number per chain from that chain's generator. A non-finite ``dH``
    (overflow, NaN) is always rejected.
    """
    u = rand(gens, (), dtype=torch.float64, device=delta_h.device)
    dh = delta_h.to(torch.float64)
    return torch.isfinite(dh) & (u < torch.exp(-dh))


@dataclass(frozen=True)
class HMC:
    """HMC: molecular dynamics on ``integrator``'s action, Metropolis on ``target``'s.

    ``target`` is the sum of its terms (default: the integrator's terms, plain HMC). The
    molecular-dynamics action may differ (self-learning HMC, an effective action); the
    chain samples ``exp(-S_target)`` exactly for any molecular-dynamics action, since the
    integrator is reversible and area-preserving and the Metropolis test uses the true
    Hamiltonian ``K(p) + S_target(q)``.

    One trajectory: each pseudofermion term of ``target`` draws its field from its heat
    bath at the current links; the integrator's pseudofermion terms (as many, in the same
    order) use the same fields. Momenta ``p ~ exp(-K)`` per chain, integration over MD
    time ``trajectory_length``, then the Metropolis test on ``dH = H(q', p') - H(q, p)``.
    Rejected chains keep their fields. The fields of the trajectory are kept in the
    chain state. ``StepInfo.counters``: force evaluations per integrator level, and the
    CG iterations of the molecular dynamics (``cg_md``; with solves, ``cg_md_k`` per level
    ``k``, outermost first) and of the exact heat bath and Hamiltonians (``cg_metropolis``).

    ``trajectory_jitter = j > 0``: each trajectory's length is ``trajectory_length (1 + j
    (2u - 1))`` (same number of steps, step size scaled) with ``u`` uniform from chain 0's
    generator, one length for the batch. A fixed length leaves harmonic modes with
    ``omega tau`` near ``2 pi n`` almost frozen (free fields, light scalars: their
    autocorrelation runs to hundreds of trajectories); a length drawn independently of the
    state mixes kernels that each satisfy detailed balance, so the chain stays exact.
    """

    integrator: Integrator
    trajectory_length: float = 1.0
    target: tuple[Term, ...] | None = None
    trajectory_jitter: float = 0.0
    _heat_bath: tuple[PseudofermionAction, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.trajectory_length > 0:
            raise ValueError(f"hmc trajectory_length = {self.trajectory_length!r}; allowed: > 0")
        if not 0.0 <= self.trajectory_jitter < 1.0:
            raise ValueError(f"hmc trajectory_jitter = {self.trajectory_jitter!r}; allowed: 0 <= jitter < 1")
        if self.target is not None:
            object.__setattr__(self, "target", tuple(self.target))
        heat_bath = tuple(t for t in self.target_terms if isinstance(t, PseudofermionAction))
        if self.integrator.n_pseudofermions != len(heat_bath):
            raise ValueError(
                f"hmc: the molecular dynamics has {self.integrator.n_pseudofermions} pseudofermion "
                f"terms, the target {len(heat_bath)}; allowed: the same number (they share the fields)"
            )
        object.__setattr__(self, "_heat_bath", heat_bath)  # derived, fixed at construction

    @property
    def group(self) -> Manifold:
        return self.integrator.group

    @property
    def target_terms(self) -> tuple[Term, ...]:
        """The terms of the action the chain samples (Metropolis test and heat bath)."""
        return self.integrator.terms if self.target is None else self.target

    def start(self, gens: Generators, default_start: StartFields) -> ChainState:
        """The configured start fields, drawn with the chains' generators."""
        return ChainState.initial(default_start(gens), gens)

    def init(self, fields: torch.Tensor, seed: int) -> ChainState:
        """Initial state at ``fields`` ``[B, ...]`` with per-chain generators from ``seed``."""
        return self.start(make_generators(seed, fields.shape[0], fields.device), lambda gens: fields)

    def hamiltonian(self, terms: Sequence[Action], q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """``K(p) + sum_terms S(q)`` per chain (pseudofermion terms bound)."""
        potential = terms[0].action(q)
        for term in terms[1:]:
            potential = potential + term.action(q)
        return self.group.kinetic(p) + potential

    def step(self, state: ChainState) -> tuple[ChainState, StepInfo]:
        """One trajectory of every chain."""
        gens = state.generators()
        q0 = state.fields
        with count_iterations() as total_cost:
            phis = tuple(t.heat_bath(q0, gens) for t in self._heat_bath)
            if phis:
                target, md = bind_terms(self.target_terms, phis), self.integrator.bind(phis)
            else:
                # no heat-bath term: the target has no pseudofermion term to bind
                target, md = cast(tuple[Action, ...], self.target_terms), self.integrator
            site_shape = q0.shape[1 : q0.ndim - self.group.internal_ndim]
            p0 = self.group.random_momentum(gens, site_shape, dtype=q0.dtype)
            h0 = self.hamiltonian(target, q0, p0)
            tau = self.trajectory_length
            if self.trajectory_jitter > 0:
                u = float(rand(gens[:1], (), dtype=torch.float64, device=q0.device)[0])
                tau = tau * (1.0 + self.trajectory_jitter * (2.0 * u - 1.0))
            with count_iterations() as md_cost:
                traj = md.integrate(q0, p0, tau)
            h1 = self.hamiltonian(target, traj.q, traj.p)
        delta_h = h1 - h0
        accepted = metropolis_accept(delta_h, gens)
        mask = accepted.reshape((-1,) + (1,) * (q0.ndim - 1))
        fields = torch.where(mask, traj.q, q0)
        counters = {f"force_evaluations_{k}": n for k, n in enumerate(traj.force_evaluations)}
        if md_cost.total:
            counters.update({f"cg_md_{k}": n for k, n in enumerate(traj.solver_iterations)})
        counters["cg_md"] = md_cost.total
        counters["cg_metropolis"] = total_cost.total - md_cost.total  # heat bath and both Hamiltonians
        info = StepInfo.metropolis(delta_h, accepted, **counters)
        return state.advance(fields, gens, accepted, pseudofermions=phis), info
