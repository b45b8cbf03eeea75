"""The sampler contract: what every Markov-chain sampler provides and declares.

A sampler is an immutable object built from actions (and possibly a trained model).
Everything a chain needs to continue lives in its ``ChainState``:

- ``start(gens, default_start)`` makes the first state of ``B = len(gens)`` chains. The
  sampler chooses its first fields (HMC: ``default_start(gens)``, the configured hot or
  cold start; a flow sampler: a draw from its flow) with the chains' own generators,
  whose states then continue the chain.
- ``step(state) -> (state, StepInfo)`` is one Markov step of every chain, ending in an
  exact accept/reject.

Samplers never keep mutable state; restoring a serialised state continues the chain
bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..lattice.random import Generators
from .state import ChainState

__all__ = ["Sampler", "StepInfo", "StartFields"]

#: per-chain generators -> start fields ``[B, ...]``
StartFields = Callable[[Generators], torch.Tensor]


@dataclass(frozen=True)
class StepInfo:
    """Per-chain diagnostics of one Markov step (tensors ``[B]``).

    ``delta_H``: the exponent of the acceptance probability ``min(1, exp(-delta_H))``
    (the energy violation for HMC, the log-weight ratio for independence samplers), so
    that ``<exp(-delta_H)> = 1`` for every exact sampler. ``counters``: cost counts of the
    step (force evaluations per integrator level, ...), plain integers.
    """

    delta_H: torch.Tensor
    accepted: torch.Tensor
    accept_prob: torch.Tensor
    counters: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def metropolis(cls, delta_h: torch.Tensor, accepted: torch.Tensor, **counters: int) -> StepInfo:
        """The info of a Metropolis step with exponent ``delta_h``."""
        prob = torch.clamp(torch.exp(-delta_h.to(torch.float64)), max=1.0).nan_to_num(0.0)
        return cls(delta_H=delta_h, accepted=accepted, accept_prob=prob, counters=dict(counters))


class Sampler(Protocol):
    """An exact Markov-chain sampler (see the module docstring)."""

    def start(self, gens: Generators, default_start: StartFields) -> ChainState: ...

    def step(self, state: ChainState) -> tuple[ChainState, StepInfo]: ...
