"""Run a sampler for a number of steps, measuring as it goes."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .contract import Sampler
from .state import ChainState

__all__ = ["run_chain"]


def run_chain(
    sampler: Sampler,
    state: ChainState,
    n_steps: int,
    measure: Callable[[torch.Tensor], torch.Tensor | dict[str, torch.Tensor]] | None = None,
    n_skip: int = 0,
) -> tuple[ChainState, dict[str, torch.Tensor]]:
    """Advance ``state`` by ``n_skip + n_steps`` steps.

    After each of the last ``n_steps`` steps, ``measure(fields)`` is recorded (a tensor
    or a dict of tensors, each with the batch as leading axis). Returns the final state
    and a dict of stacked records ``[n_steps, B, ...]``, always holding ``delta_H`` and
    ``accepted`` when the sampler's info has them.
    """
    records: dict[str, list[torch.Tensor]] = {}
    for i in range(n_skip + n_steps):
        state, info = sampler.step(state)
        if i < n_skip:
            continue
        row: dict[str, torch.Tensor] = {"delta_H": info.delta_H, "accepted": info.accepted}
        if measure is not None:
            m = measure(state.fields)
            row.update(m if isinstance(m, dict) else {"value": m})
        for key, value in row.items():
            records.setdefault(key, []).append(value.detach())
    return state, {k: torch.stack(v) for k, v in records.items()}
