"""Normalizing-flow models: a prior and a composition of invertible layers.

Every layer maps ``x -> y`` and returns ``(y, log|det dy/dx|)`` per configuration
(shape ``[B]``); ``reverse(y)`` returns ``(x, log|det dx/dy|)`` (``transform.InvertibleLayer``).
A model draws ``z ~ r(z)`` from its prior (``prior.Prior``, which fixes the domain, dtype
and device of the fields) and pushes it through the layers; the density of the output is
``log q(x) = log r(z) - sum of the layers' log-Jacobians``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .prior import NormalPrior, Prior, UniformAnglePrior
from .transform import Compose, InvertibleLayer

__all__ = ["FlowModel", "NormalPrior", "UniformAnglePrior"]


class FlowModel(Compose):
    """``x = f_K o ... o f_1 (z)`` with ``z`` from ``prior``; itself an ``InvertibleLayer`` ``z -> x``."""

    def __init__(self, prior: Prior, layers: Sequence[InvertibleLayer]) -> None:
        if not isinstance(prior, Prior):
            raise TypeError(f"flow model: prior of type {type(prior).__name__}; allowed: a Prior subclass")
        super().__init__(layers)
        self.prior = prior

    def push(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log q(x))`` for prior draws ``z``."""
        x, log_det = self(z)
        return x, self.prior.log_prob(z) - log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples and their log densities, in the prior's field dtype and on its device."""
        return self.push(self.prior.sample(n, generator))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(x)`` through the inverse map."""
        z, log_det = self.reverse(x)
        return self.prior.log_prob(z) + log_det
