"""Independence Metropolis-Hastings with proposals from a normalizing flow.

Each step every chain draws ``x' ~ q`` from the flow (its own generator for the prior
draw) and accepts with probability ``min(1, w(x') / w(x))``, ``log w = -S - log q``:
the chain samples ``exp(-S) / Z`` exactly whatever the quality of ``q``. The model is
evaluated in the dtype of the fields (float64 by default), so the density of each
proposal is the density of the map that produced it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..lattice import make_generators
from .hmc import HMCInfo, metropolis_accept
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

    ``action(fields) -> [B]``; ``model`` a ``FlowModel`` (its prior gives ``sample_chains``).
    ``delta_H`` in the step info is ``log w(x) - log w(x')``, so that the acceptance
    probability is ``min(1, exp(-delta_H))`` as for HMC and ``<exp(-delta_H)> = 1``.
    """

    model: torch.nn.Module
    action: Callable[[torch.Tensor], torch.Tensor]

    def _log_weight(self, x: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
        return -self.action(x) - log_q

    @torch.no_grad()
    def initial_fields(self, gens) -> torch.Tensor:
        """A flow draw per chain: the natural start of an independence sampler.

        A start far from the flow's support (for example a hot start in the barrier
        between the two phases of phi^4) can have a huge weight ``p / q``; the chain
        then stays there for very long, though it is still exact.
        """
        return self.propose(gens)[0]

    def init(self, fields: torch.Tensor, seed: int) -> ChainState:
        """Start from ``fields``; their flow density comes from the inverse map."""
        gens = make_generators(seed, fields.shape[0], fields.device)
        state = ChainState(
            fields=fields,
            rng_states=tuple(g.get_state() for g in gens),
            n_accepted=torch.zeros(fields.shape[0], dtype=torch.int64),
        )
        return self.prepare(state)

    @torch.no_grad()
    def prepare(self, state: ChainState) -> ChainState:
        """``state`` with the log weight of its fields (kept if already there)."""
        if "log_weight" in state.extra:
            return state
        p = next(self.model.parameters())
        x = state.fields.to(p.dtype)
        lw = self._log_weight(x, self.model.log_prob(x)).to(torch.float64)
        return replace(state, extra={**state.extra, "log_weight": lw})

    @torch.no_grad()
    def propose(self, gens) -> tuple[torch.Tensor, torch.Tensor]:
        """One flow sample per chain and its ``log w``."""
        p = next(self.model.parameters())
        z = self.model.prior.sample_chains(gens, p.dtype).to(p.device)
        x, log_q = self.model.push(z)
        return x, self._log_weight(x, log_q).to(torch.float64)

    def step(self, state: ChainState) -> tuple[ChainState, HMCInfo]:
        gens = state.generators()
        x_new, lw_new = self.propose(gens)
        lw_old = state.extra["log_weight"]
        delta = lw_old - lw_new
        accepted = metropolis_accept(delta, gens)
        mask = accepted.reshape((-1,) + (1,) * (x_new.ndim - 1))
        fields = torch.where(mask, x_new.to(state.fields.dtype), state.fields)
        log_weight = torch.where(accepted, lw_new, lw_old)
        info = HMCInfo(
            delta_H=delta,
            accepted=accepted,
            accept_prob=torch.clamp(torch.exp(-delta), max=1.0).nan_to_num(0.0),
        )
        return state.advance(fields, gens, accepted, log_weight=log_weight), info
