"""Explicit, serialisable Markov-chain state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..lattice import generator_states, restore_generators

__all__ = ["ChainState"]


@dataclass(frozen=True)
class ChainState:
    """Everything a chain needs to continue bit for bit.

    fields:      ``[B, ...]`` current configurations of the ``B`` chains.
    rng_states:  one ``torch.Generator`` state (uint8, CPU) per chain.
    trajectory:  number of completed Markov steps.
    n_accepted:  ``[B]`` accepted proposals per chain.
    extra:       sampler-specific tensors (for example persistent momenta).
    """

    fields: torch.Tensor
    rng_states: tuple[torch.Tensor, ...]
    trajectory: int = 0
    n_accepted: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def n_chains(self) -> int:
        return int(self.fields.shape[0])

    def generators(self) -> list[torch.Generator]:
        """Fresh generators set to this state's RNG states (the state is not changed)."""
        return restore_generators(self.rng_states, self.fields.device)

    def advance(
        self,
        fields: torch.Tensor,
        gens: list[torch.Generator],
        accepted: torch.Tensor,
        **extra: torch.Tensor,
    ) -> ChainState:
        """The state after one more Markov step."""
        n_acc = self.n_accepted if self.n_accepted is not None else torch.zeros(
            self.n_chains, dtype=torch.int64
        )
        return replace(
            self,
            fields=fields,
            rng_states=tuple(generator_states(gens)),
            trajectory=self.trajectory + 1,
            n_accepted=n_acc + accepted.to("cpu", torch.int64),
            extra={**self.extra, **extra},
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain tensors and integers (CPU), for ``torch.save`` or a Zarr checkpoint."""
        return {
            "fields": self.fields.detach().cpu(),
            "rng_states": torch.stack(list(self.rng_states)),
            "trajectory": int(self.trajectory),
            "n_accepted": (
                self.n_accepted.cpu()
                if self.n_accepted is not None
                else torch.zeros(self.n_chains, dtype=torch.int64)
            ),
            "extra": {k: v.detach().cpu() for k, v in self.extra.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], device: torch.device | str = "cpu") -> ChainState:
        """Inverse of ``to_dict``; fields (and extras) are moved to ``device``."""
        return cls(
            fields=data["fields"].to(device),
            rng_states=tuple(s.clone() for s in data["rng_states"]),
            trajectory=int(data["trajectory"]),
            n_accepted=data["n_accepted"].clone(),
            extra={k: v.to(device) for k, v in data.get("extra", {}).items()},
        )
