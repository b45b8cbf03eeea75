"""Actions pulled back through a field transformation.

A transform ``F`` maps fields ``V`` ``[B, ...]`` to ``(F(V), log|det dF/dV|)`` (``[B]``): an
``nn.InvertibleLayer`` (a flow layer, a composition, a flow model) or any callable with
that contract. The pulled-back action

    ``S_F(V) = S(F(V)) - log|det dF/dV|``

is the action of ``V`` when ``F(V)`` is distributed as ``exp(-S)``: HMC on ``S_F`` samples
``V`` exactly and ``F(V)`` then samples ``exp(-S)`` (field-transformed HMC). A transform
may instead declare that it has no Jacobian term by returning ``None`` in its place
(``WithoutJacobian``): the action is then ``S(F(V))`` alone, an effective action that is
not a change of variables (self-learning HMC's, whose Metropolis test on the exact action
corrects its molecular dynamics).

Force convention (``theories.base.Action``, ``lattice.groups``): ``dS_F/dw^a`` along
``V -> exp(i w^a t^a) V`` (``V -> V + w`` for real fields and U(1) angles), an algebra
element of ``V``'s shape. It is one vector-Jacobian product through ``F``: with ``S``'s own
force ``f`` at ``Y = F(V)``, the cotangent ``G`` on ``Y`` satisfies ``dS = Re sum conj(G) dY``:
``G = f`` for real fields and angles; ``G = 2i f Y`` for SU(N), since for ``dY = i E Y``,
``E = e^a t^a``, ``Re tr((2i f Y)^dag i E Y) = 2 tr(f E) = sum_a f^a e^a``. The
log-determinant enters with cotangent ``-1``; the VJP of ``(Y, log|det|)`` onto ``V`` itself
gives the gradient in ``V``'s entries, and ``Manifold.from_ambient_gradient`` the force (for
SU(N) ``-TA(V G_V^dag) / 2``, the inverse of the cotangent above).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..lattice import SU, Manifold
from ..nn.transform import PullbackForce
from ..theories import Action

__all__ = ["PulledBackAction", "Transform", "WithoutJacobian", "force_cotangent"]

#: ``V -> (F(V), log|det dF/dV|)``; ``None`` in place of the log-determinant: no Jacobian term
Transform = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def force_cotangent(group: Manifold, fields: torch.Tensor, force: torch.Tensor) -> torch.Tensor:
    """The cotangent ``G`` on ``fields`` with ``dS = Re sum conj(G) dfields``, from the algebra
    force of ``S`` at ``fields`` (see the module docstring); shape of ``fields``."""
    if isinstance(group, SU):
        return 2j * (force @ fields)
    return force


@dataclass(frozen=True)
class WithoutJacobian:
    """A map ``V -> F(V)`` (a smearing network) as a transform with no Jacobian term:
    ``(F(V), None)``; the pulled-back action is then ``S(F(V))`` by definition."""

    map: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, fields: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.map(fields), None


@dataclass(frozen=True, eq=False)
class PulledBackAction:
    """``S_F(V) = S(F(V)) - log|det dF/dV|``: ``target`` (an ``Action``) pulled back through
    ``transform``, an ``Action`` on the fields ``V`` (module docstring). ``V`` and ``F(V)``
    live on the target's manifold (``group``), with the same layout.

    ``action`` follows the ambient autograd mode (so that it can be differentiated as a
    reference); ``force`` is one vector-Jacobian product through the transform, whose
    parameters it does not differentiate.
    """

    target: Action
    transform: Transform

    @property
    def group(self) -> Manifold:
        return self.target.group

    def action(self, fields: torch.Tensor) -> torch.Tensor:
        """``S(F(V)) - log|det dF/dV|`` per configuration, ``[B]``."""
        y, log_det = self.transform(fields)
        s = self.target.action(y)
        return s if log_det is None else s - log_det

    def force(self, fields: torch.Tensor) -> torch.Tensor:
        """``dS_F/dw^a`` at ``V``, an algebra element of ``V``'s shape (the transform's own
        ``PullbackForce`` where it declares one)."""
        group = self.group
        fields = fields.detach()
        if isinstance(self.transform, PullbackForce):
            return self.transform.pullback_force(fields, self.target.force)
        with torch.enable_grad():
            leaf = fields.detach().requires_grad_()  # shares the storage: no copy
            y, log_det = self.transform(leaf)
            y_det = y.detach()
            outputs, cotangents = [y], [force_cotangent(group, y_det, self.target.force(y_det))]
            if log_det is not None and log_det.requires_grad:  # a constant log-det has no force
                outputs.append(log_det)
                cotangents.append(torch.full_like(log_det, -1.0))
            (grad,) = torch.autograd.grad(outputs, leaf, grad_outputs=cotangents)
        return group.from_ambient_gradient(fields, grad)
