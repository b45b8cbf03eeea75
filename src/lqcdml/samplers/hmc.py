"""Hybrid Monte Carlo with an exact Metropolis test, for a batch of independent chains."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..lattice import make_generators, rand
from .integrators import Integrator
from .state import ChainState

__all__ = ["HMC", "HMCInfo", "metropolis_accept"]


@dataclass(frozen=True)
class HMCInfo:
    """Per-chain diagnostics of one trajectory (all ``[B]``)."""

    delta_H: torch.Tensor
    accepted: torch.Tensor
    accept_prob: torch.Tensor


def metropolis_accept(delta_h: torch.Tensor, gens: list[torch.Generator]) -> torch.Tensor:
    """Exact Metropolis test: accept with probability ``min(1, exp(-dH))``.

    One uniform number per chain from that chain's generator. A non-finite ``dH``
    (overflow, NaN) is always rejected.
    """
    u = rand(gens, (), dtype=torch.float64, device=delta_h.device)
    dh = delta_h.to(torch.float64)
    return torch.isfinite(dh) & (u < torch.exp(-dh))


@dataclass(frozen=True)
class HMC:
    """HMC on the potential of ``integrator`` (the sum of all its action terms).

    One trajectory: pseudofermion fields of the action terms that have them drawn
    from their heat bath (``term.refresh(fields, generators)``), momenta
    ``p ~ exp(-K)`` drawn per chain, integration over MD time
    ``trajectory_length``, then the exact Metropolis test on
    ``dH = H(q', p') - H(q, p)``. Rejected chains keep their fields.
    """

    integrator: Integrator
    trajectory_length: float = 1.0

    def __post_init__(self) -> None:
        if not self.trajectory_length > 0:
            raise ValueError(
                f"hmc trajectory_length = {self.trajectory_length!r}; allowed: > 0"
            )

    @property
    def group(self):
        return self.integrator.group

    def init(self, fields: torch.Tensor, seed: int) -> ChainState:
        """Initial state: ``fields`` ``[B, ...]`` and per-chain generators from ``seed``."""
        gens = make_generators(seed, fields.shape[0], fields.device)
        return ChainState(
            fields=fields,
            rng_states=tuple(g.get_state() for g in gens),
            n_accepted=torch.zeros(fields.shape[0], dtype=torch.int64),
        )

    def hamiltonian(self, q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.group.kinetic(p) + self.integrator.potential(q)

    def step(self, state: ChainState) -> tuple[ChainState, HMCInfo]:
        """One trajectory of every chain."""
        gens = state.generators()
        q0 = state.fields
        for term in self.integrator.terms:  # pseudofermion heat bath
            if hasattr(term, "refresh"):
                term.refresh(q0, gens)
        site_shape = q0.shape[1 : q0.ndim - self.group.internal_ndim]
        p0 = self.group.random_momentum(gens, site_shape, dtype=q0.dtype)
        h0 = self.hamiltonian(q0, p0)
        q1, p1 = self.integrator(q0, p0, self.trajectory_length)
        h1 = self.hamiltonian(q1, p1)
        delta_h = h1 - h0
        accepted = metropolis_accept(delta_h, gens)
        mask = accepted.reshape((-1,) + (1,) * (q0.ndim - 1))
        fields = torch.where(mask, q1, q0)
        info = HMCInfo(
            delta_H=delta_h,
            accepted=accepted,
            accept_prob=torch.clamp(torch.exp(-delta_h.to(torch.float64)), max=1.0).nan_to_num(0.0),
        )
        return state.advance(fields, gens, accepted), info
