"""Field-transformed HMC: HMC in the variables ``V`` of an invertible field transformation.

With ``U = F(V)`` (an ``nn.InvertibleLayer``: a flow, masked stout layers) the chain runs HMC
on ``V`` with the pulled-back action ``S_F(V) = S(F(V)) - log|det dF/dV|``
(``pullback.PulledBackAction``; force by one vector-Jacobian product). ``V`` is then distributed
as ``exp(-S_F)`` and ``U = F(V)`` as ``exp(-S)``, exactly, for any ``F`` that is a bijection
with the exact log-Jacobian: the Metropolis test uses ``S_F`` itself, the same action the
molecular dynamics integrates (Lüscher, arXiv:0907.5491; REFERENCE: field-transformed HMC).
A good ``F`` makes ``S_F`` flatter than ``S`` (a trivialising map makes it the Haar measure's
constant), so that the molecular dynamics moves further per unit of cost.

The chain state's ``fields`` are ``U`` (what the store records and every observable reads);
``V`` travels in the state's extras (``latent``), so neither the inverse of ``F`` nor a
re-evaluation of the chain is ever needed, and a restored state continues bit for bit. An
empty transform (no layers) is the identity: the molecular dynamics then uses ``S`` itself and
the chain is plain HMC bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..lattice.random import Generators
from ..nn.transform import Compose, InvertibleLayer
from ..theories import Action
from .contract import StartFields, StepInfo
from .hmc import HMC
from .integrators import Integrator
from .pullback import PulledBackAction
from .state import ChainState

__all__ = ["FieldTransformedHMC", "LATENT"]

#: the chain state's extra holding the fields ``V`` of the molecular dynamics
LATENT = "latent"


def is_identity(transform: InvertibleLayer) -> bool:
    """Whether ``transform`` is a composition of no layers (the identity map)."""
    return isinstance(transform, Compose) and len(transform.layers) == 0


@dataclass(frozen=True)
class FieldTransformedHMC:
    """HMC on ``V`` with ``S_F = S o F - log|det dF|``; chain fields ``U = F(V)``.

    ``action``: the target ``S`` (pure gauge: no pseudofermion terms); ``transform``: ``F``, whose
    parameters stay fixed (the chain is exact for any of them); ``n_steps``, ``scheme``,
    ``trajectory_length``, ``trajectory_jitter``: the molecular dynamics of ``HMC``.
    """

    action: Action
    transform: InvertibleLayer
    n_steps: int
    scheme: str = "omelyan"
    trajectory_length: float = 1.0
    trajectory_jitter: float = 0.0
    hmc: HMC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the HMC of V: molecular dynamics and Metropolis test on S_F (derived, fixed at construction)
        pulled = self.action if is_identity(self.transform) else PulledBackAction(self.action, self.transform)
        md = Integrator.single(pulled, self.n_steps, self.scheme)
        hmc = HMC(md, trajectory_length=self.trajectory_length, trajectory_jitter=self.trajectory_jitter)
        object.__setattr__(self, "hmc", hmc)

    def push(self, latent: torch.Tensor) -> torch.Tensor:
        """``U = F(V)`` (no graph)."""
        if is_identity(self.transform):
            return latent
        with torch.no_grad():
            return self.transform(latent)[0]

    def start(self, gens: Generators, default_start: StartFields) -> ChainState:
        """``V`` from the configured start (hot, cold), ``U = F(V)``."""
        latent = default_start(gens)
        return ChainState.initial(self.push(latent), gens, **{LATENT: latent})

    def step(self, state: ChainState) -> tuple[ChainState, StepInfo]:
        """One HMC trajectory of ``V`` for every chain; the fields become ``F(V')``."""
        if LATENT not in state.extra:
            raise ValueError(f"field-transformed HMC: the chain state has no {LATENT!r} fields V")
        inner, info = self.hmc.step(replace(state, fields=state.extra[LATENT]))
        fields = torch.where(_per_chain(info.accepted, inner.fields), self.push(inner.fields), state.fields)
        return replace(inner, fields=fields, extra={**inner.extra, LATENT: inner.fields}), info


def _per_chain(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return mask.to(like.device).reshape((-1,) + (1,) * (like.ndim - 1))
