"""Normalizing flows: a prior, invertible layers with exact log-Jacobians, and the model.

Every layer maps ``x -> y`` and returns ``(y, log|det dy/dx|)`` per configuration
(shape ``[B]``); ``reverse(y)`` returns ``(x, log|det dx/dy|)``. A model draws
``z ~ r(z)`` from its prior and pushes it through the layers; the density of the
output is ``log q(x) = log r(z) - sum of the layers' log-Jacobians``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..lattice import rand, randn

__all__ = ["FlowModel", "NormalPrior", "UniformAnglePrior"]


class NormalPrior(nn.Module):
    """Independent normals of width ``scale`` at every site; ``shape`` is per configuration."""

    def __init__(self, shape: tuple[int, ...], scale: float = 1.0) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"normal prior: scale = {scale}; allowed: > 0")
        self.shape, self.scale = tuple(shape), float(scale)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32, device=None):
        return self.scale * torch.randn((n, *self.shape), generator=generator, dtype=dtype, device=device)

    def sample_chains(self, gens, dtype=torch.float64):
        """One draw per chain, chain ``b`` from ``gens[b]``."""
        return self.scale * randn(gens, self.shape, dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, z.ndim))
        n = math.prod(self.shape)
        return -0.5 * ((z / self.scale) ** 2).sum(dims) - n * (0.5 * math.log(2 * math.pi) + math.log(self.scale))


class UniformAnglePrior(nn.Module):
    """Uniform angles in ``[-pi, pi)`` (the Haar measure of U(1)); ``log r = -n log 2 pi``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def sample(self, n: int, generator: torch.Generator | None = None, dtype=torch.float32, device=None):
        return (2 * torch.rand((n, *self.shape), generator=generator, dtype=dtype, device=device) - 1) * math.pi

    def sample_chains(self, gens, dtype=torch.float64):
        return (2 * rand(gens, self.shape, dtype) - 1) * math.pi

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full(z.shape[:1], -math.log(2 * math.pi) * math.prod(self.shape), dtype=z.dtype, device=z.device)


class FlowModel(nn.Module):
    """``x = f_K o ... o f_1 (z)`` with ``z`` from ``prior``."""

    def __init__(self, prior: nn.Module, layers: list[nn.Module]) -> None:
        super().__init__()
        self.prior = prior
        self.layers = nn.ModuleList(layers)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dz|)``."""
        log_det = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for layer in self.layers:
            z, ld = layer(z)
            log_det = log_det + ld
        return z, log_det

    def reverse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det dz/dx|)``."""
        log_det = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in reversed(self.layers):
            x, ld = layer.reverse(x)
            log_det = log_det + ld
        return x, log_det

    def push(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log q(x))`` for prior draws ``z``."""
        x, log_det = self(z)
        return x, self.prior.log_prob(z) - log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples and their log densities, in the model's dtype and device."""
        p = next(self.parameters())
        return self.push(self.prior.sample(n, generator, p.dtype, p.device))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log q(x)`` through the inverse map."""
        z, log_det = self.reverse(x)
        return self.prior.log_prob(z) + log_det
