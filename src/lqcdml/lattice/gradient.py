"""Lie-algebra gradients of scalar functions of a field, by automatic differentiation."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .groups import Manifold

__all__ = ["algebra_gradient"]


def algebra_gradient(fn: Callable[[torch.Tensor], torch.Tensor], q: torch.Tensor, group: Manifold) -> torch.Tensor:
    """Derivative of ``fn`` along ``exp(i w^a t^a) q`` at ``w = 0``, as an algebra element.

    ``fn`` maps a batch of fields to one value per chain (``[B]``; chains are
    independent, so the gradient of the batch sum is each chain's own gradient). The
    result has the shape of ``q``: for U(1) and real fields ``d fn / d q``; for SU(N)
    the hermitian traceless matrices ``sum_a (d fn / d w^a) t^a``.
    """
    q = q.detach()
    with torch.enable_grad():
        leaf = q.detach().requires_grad_()  # shares the storage: no copy
        (grad,) = torch.autograd.grad(fn(leaf).sum(), leaf)
    return group.from_ambient_gradient(q, grad)
