"""Explicit, serialisable Markov-chain state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from ..lattice import generator_states, restore_generators

__all__ = ["ChainState"]

_EXTRA = "extra."
_PSEUDOFERMION = "pseudofermion."


@dataclass(frozen=True)
class ChainState:
    """Everything a chain needs to continue bit for bit.

    fields:         ``[B, ...]`` current configurations of the ``B`` chains.
    rng_states:     one ``torch.Generator`` state (uint8, CPU) per chain.
    trajectory:     number of completed Markov steps.
    n_accepted:     ``[B]`` accepted proposals per chain.
    pseudofermions: the pseudofermion fields of the last trajectory (``[B, ...]`` each,
                    in the order of the sampler's pseudofermion terms); empty without.
    extra:          sampler-specific tensors (for example the log weight of the fields).
    """

    fields: torch.Tensor
    rng_states: tuple[torch.Tensor, ...]
    trajectory: int = 0
    n_accepted: torch.Tensor | None = None
    pseudofermions: tuple[torch.Tensor, ...] = ()
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def initial(cls, fields: torch.Tensor, gens, **extra: torch.Tensor) -> ChainState:
        """The state of chains at ``fields`` whose generators are ``gens`` (step 0)."""
        return cls(
            fields=fields,
            rng_states=tuple(generator_states(gens)),
            n_accepted=torch.zeros(fields.shape[0], dtype=torch.int64),
            extra=dict(extra),
        )

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
        pseudofermions: tuple[torch.Tensor, ...] | None = None,
        **extra: torch.Tensor,
    ) -> ChainState:
        """The state after one more Markov step."""
        n_acc = self.n_accepted if self.n_accepted is not None else torch.zeros(self.n_chains, dtype=torch.int64)
        return replace(
            self,
            fields=fields,
            rng_states=tuple(generator_states(gens)),
            trajectory=self.trajectory + 1,
            n_accepted=n_acc + accepted.to("cpu", torch.int64),
            pseudofermions=self.pseudofermions if pseudofermions is None else tuple(pseudofermions),
            extra={**self.extra, **extra},
        )

    # --- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Flat mapping of CPU tensors and one integer (``trajectory``): the one format
        every sampler's state is saved in (``torch.save``, the store's checkpoint)."""
        out: dict[str, Any] = {
            "fields": self.fields.detach().cpu(),
            "rng_states": torch.stack(list(self.rng_states)),
            "trajectory": int(self.trajectory),
            "n_accepted": (
                self.n_accepted.cpu() if self.n_accepted is not None else torch.zeros(self.n_chains, dtype=torch.int64)
            ),
        }
        out.update({f"{_PSEUDOFERMION}{i}": p.detach().cpu() for i, p in enumerate(self.pseudofermions)})
        out.update({f"{_EXTRA}{k}": v.detach().cpu() for k, v in self.extra.items()})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], device: torch.device | str = "cpu") -> ChainState:
        """Inverse of ``to_dict``; fields, pseudofermions and extras go to ``device``."""
        n_pf = sum(1 for k in data if k.startswith(_PSEUDOFERMION))
        return cls(
            fields=torch.as_tensor(data["fields"]).to(device),
            rng_states=tuple(torch.as_tensor(s).clone() for s in data["rng_states"]),
            trajectory=int(data["trajectory"]),
            n_accepted=torch.as_tensor(data["n_accepted"]).clone(),
            pseudofermions=tuple(torch.as_tensor(data[f"{_PSEUDOFERMION}{i}"]).to(device) for i in range(n_pf)),
            extra={k[len(_EXTRA) :]: torch.as_tensor(v).to(device) for k, v in data.items() if k.startswith(_EXTRA)},
        )

    def checkpoint(self) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """``to_dict`` without the fields, split into arrays and integer attributes (a
        store keeps the fields of the last commit beside its checkpoint)."""
        data = self.to_dict()
        data.pop("fields")
        attrs = {"trajectory": data.pop("trajectory")}
        return {k: v.numpy() for k, v in data.items()}, attrs

    @classmethod
    def from_checkpoint(
        cls,
        fields: np.ndarray | torch.Tensor,
        arrays: Mapping[str, np.ndarray],
        attrs: Mapping[str, Any],
        device: torch.device | str = "cpu",
    ) -> ChainState:
        """Inverse of ``checkpoint`` given the fields of the same commit."""
        data = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}
        return cls.from_dict(
            {**data, "fields": torch.as_tensor(np.asarray(fields)), "trajectory": attrs["trajectory"]}, device
        )
