"""The interface every action shares."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..lattice import Manifold, algebra_gradient, randn
from ..lattice.random import Generators

__all__ = ["Action", "BoundPseudofermion", "PseudofermionAction", "autograd_force", "gaussian_fermion"]


@runtime_checkable
class Action(Protocol):
    """A lattice action ``S[q]`` on fields of one manifold.

    ``action(q)`` returns one value per chain (``[B]``); ``force(q)`` returns the
    Lie-algebra gradient ``dS/dw^a`` in the manifold's algebra representation (same
    shape as ``q``), the quantity molecular dynamics subtracts from the momenta.
    """

    @property
    def group(self) -> Manifold: ...

    def action(self, q: torch.Tensor) -> torch.Tensor: ...

    def force(self, q: torch.Tensor) -> torch.Tensor: ...


def autograd_force(action: Action, q: torch.Tensor) -> torch.Tensor:
    """The force of ``action`` from automatic differentiation (reference for tests)."""
    return algebra_gradient(action.action, q, action.group)


def gaussian_fermion(links: torch.Tensor, gens: Generators, spin_shape: tuple[int, ...], n: int) -> torch.Tensor:
    """``eta ~ exp(-|eta|^2)``: a complex fermion field ``[B, L..., *spin_shape, N]`` on the lattice
    of ``links``, real then imaginary parts from each chain's generator (heat baths draw it)."""
    shape = tuple(links.shape[2 : 2 + links.shape[1]]) + spin_shape + (n,)
    real = links.real.dtype
    return torch.complex(randn(gens, shape, real), randn(gens, shape, real)) / (2**0.5)


def force_solver_tol(tol: float, force_tol: float | None) -> float:
    """The CG relative residual of a pseudofermion force: ``force_tol`` where set (the
    molecular dynamics' own, looser residual), else ``tol``. The chain stays exact either way:
    every solve starts from zero and stops per chain, so the force is a function of the links
    and the field and the integrator stays reversible and area-preserving; the heat bath and
    the Metropolis test's actions keep ``tol``."""
    return tol if force_tol is None else force_tol


class PseudofermionAction(ABC):
    """A fermion determinant as a Gaussian integral over a pseudofermion field ``phi``.

    Stateless: the field is an argument. ``heat_bath(links, gens)`` draws ``phi`` from
    ``exp(-S(links, phi))`` (one draw per chain, from that chain's generator);
    ``action(links, phi)`` is ``[B]``; ``force(links, phi)`` is ``dS/dw^a`` at fixed
    ``phi``. Samplers keep ``phi`` in the chain state and ``bind`` it for molecular
    dynamics.
    """

    @property
    @abstractmethod
    def group(self) -> Manifold:
        """The group of the links."""

    @abstractmethod
    def heat_bath(self, links: torch.Tensor, gens: Generators) -> torch.Tensor: ...

    @abstractmethod
    def action(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def force(self, links: torch.Tensor, phi: torch.Tensor) -> torch.Tensor: ...

    def bind(self, phi: torch.Tensor) -> BoundPseudofermion:
        """This action at the fixed field ``phi``: an ``Action`` of the links alone."""
        return BoundPseudofermion(self, phi)


@dataclass(frozen=True)
class BoundPseudofermion:
    """A pseudofermion action with its field fixed (an ``Action`` for the integrators)."""

    term: PseudofermionAction
    phi: torch.Tensor

    @property
    def group(self) -> Manifold:
        return self.term.group

    def action(self, links: torch.Tensor) -> torch.Tensor:
        return self.term.action(links, self.phi)

    def force(self, links: torch.Tensor) -> torch.Tensor:
        return self.term.force(links, self.phi)
