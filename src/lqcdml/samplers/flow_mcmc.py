"""Independence Metropolis-Hastings with proposals from a normalizing flow.

Each step every chain draws ``x' ~ q`` from the flow (its own generator for the prior
draw) and accepts with probability ``min(1, w(x') / w(x))``, ``log w = -S - log q``:
the chain samples ``exp(-S) / Z`` exactly whatever the quality of ``q``. Proposals are
drawn and evaluated in the field dtype of the model's prior (``model.prior.field_dtype()``:
its domain at the model's precision; complex for SU(N) links), never a dtype guessed from
the model's parameters, so the density of each proposal is the density of the map that
produced it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..lattice import make_generators
from ..lattice.random import Generators
from ..nn import FlowModel
from ..nn.transform import real_dtype
from .contract import StartFields, StepInfo
from .hmc import metropolis_accept
from .state import ChainState

__all__ = ["FlowMCMC", "effective_sample_size", "independence_acceptance"]


def effective_sample_size(log_weights: torch.Tensor) -> float:
    """Normalised ESS ``(sum w)^2 / (N sum w^2)`` of importance weights given by their logs."""
    lw = log_weights.detach().to(torch.float64).flatten()
    lw = lw - lw.max()
    w = torch.exp(lw)
    return float(w.sum() ** 2 / (lw.numel() * (w**2).sum()))


def independence_acceptance(log_weights: torch.Tensor, generator: torch.Generator | None = None) -> float:
    """Acceptance rate of an independence Metropolis chain through iid proposals with these ``log w``."""
    lw = log_weights.detach().to(torch.float64).flatten().cpu()
    u = torch.rand(lw.numel(), generator=generator, dtype=torch.float64)
    current, accepted = float(lw[0]), 0
    for new, ui in zip(lw[1:].tolist(), u[1:].tolist()):
        if new >= current or ui < math.exp(new - current):
            current, accepted = new, accepted + 1
    return accepted / max(lw.numel() - 1, 1)


@dataclass(frozen=True)
class FlowMCMC:
    """Independence Metropolis sampler on ``action`` with proposals from ``model``.

    ``action(fields) -> [B]``; ``model`` a ``FlowModel`` (its prior gives the draws, their
    dtype and device). ``field_dtype``: the dtype of the chain's fields (``None``: the
    prior's ``field_dtype()``); it must be a field dtype of the prior's domain (float for
    real fields and angles, complex for SU(N)), at the prior's precision or another one
    (the proposals are then drawn at the prior's and stored at this one).
    ``delta_H`` in the step info is ``log w(x) - log w(x')``, so that the acceptance
    probability is ``min(1, exp(-delta_H))`` as for HMC and ``<exp(-delta_H)> = 1``.
    """

    model: FlowModel
    action: Callable[[torch.Tensor], torch.Tensor]
    field_dtype: torch.dtype | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model, FlowModel):
            raise TypeError(f"flow sampler: model of type {type(self.model).__name__}; allowed: a FlowModel")
        if self.field_dtype is not None:
            prior = self.model.prior
            expected = prior.field_dtype(real_dtype(self.field_dtype))
            if self.field_dtype != expected:
                raise ValueError(
                    f"flow sampler: field_dtype = {self.field_dtype}; allowed: {expected} (the prior's "
                    f"domain {prior.domain.value!r} at that precision)"
                )

    def _log_weight(self, x: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        return -self.action(x) - log_q

    def start(self, gens: Generators, default_start: StartFields | None = None) -> ChainState:
        """A flow draw per chain, the natural start of an independence sampler (the
        configured start is not used).

        A start far from the flow's support (for example a hot start in the barrier
        between the two phases of phi^4) can have a huge weight ``p / q``; the chain
        then stays there for very long, though it is still exact.
        """
        fields = self.propose(gens)[0]
        if self.field_dtype is not None:
            fields = fields.to(self.field_dtype)
        return ChainState.initial(fields, gens, log_weight=self.log_weight(fields))

    def init(self, fields: torch.Tensor, seed: int) -> ChainState:
        """Start from ``fields``; their flow density comes from the inverse map."""
        gens = make_generators(seed, fields.shape[0], fields.device)
        return ChainState.initial(fields, gens, log_weight=self.log_weight(fields))

    @torch.no_grad()
    def log_weight(self, fields: torch.Tensor) -> torch.Tensor:
        """``log w = -S - log q`` of ``fields`` (``[B]``, float64), ``q`` by the inverse map in the
        prior's field dtype."""
        x = fields.to(self.model.prior.field_dtype())
        return self._log_weight(x, self.model.log_prob(x)).to(torch.float64)

    @torch.no_grad()
    def propose(self, gens: Generators) -> tuple[torch.Tensor, torch.Tensor]:
        """One flow sample per chain (the prior's field dtype and device) and its ``log w``."""
        prior = self.model.prior
        z = prior.sample_chains(gens, prior.field_dtype()).to(prior.device)
        x, log_q = self.model.push(z)
        return x, self._log_weight(x, log_q).to(torch.float64)

    def step(self, state: ChainState) -> tuple[ChainState, StepInfo]:
        gens = state.generators()
        x_new, lw_new = self.propose(gens)
        lw_old = state.extra["log_weight"]
        delta = lw_old - lw_new
        accepted = metropolis_accept(delta, gens)
        mask = accepted.reshape((-1,) + (1,) * (x_new.ndim - 1))
        fields = torch.where(mask, x_new.to(state.fields.dtype), state.fields)
        log_weight = torch.where(accepted, lw_new, lw_old)
        info = StepInfo.metropolis(delta, accepted)
        return state.advance(fields, gens, accepted, log_weight=log_weight), info
