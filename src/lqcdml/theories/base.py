"""The interface every action shares."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..lattice import Manifold, algebra_gradient

__all__ = ["Action", "autograd_force"]


@runtime_checkable
class Action(Protocol):
    """A lattice action ``S[q]`` on fields of one manifold.

    ``action(q)`` returns one value per chain (``[B]``); ``force(q)`` returns the
    Lie-algebra gradient ``dS/dw^a`` in the manifold's algebra representation (same
    shape as ``q``), the quantity molecular dynamics subtracts from the momenta.
    """

    group: Manifold

    def action(self, q: torch.Tensor) -> torch.Tensor: ...

    def force(self, q: torch.Tensor) -> torch.Tensor: ...


def autograd_force(action: Action, q: torch.Tensor) -> torch.Tensor:
    """The force of ``action`` from automatic differentiation (reference for tests)."""
    return algebra_gradient(action.action, q, action.group)
