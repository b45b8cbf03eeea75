"""Scalar-field observables; fields ``[B, L_0, ..., L_{d-1}]`` real."""

from __future__ import annotations

import torch

__all__ = [
    "magnetization",
    "abs_magnetization",
    "two_point_susceptibility",
    "two_point_function",
    "zero_momentum_correlator",
    "timeslice_correlator",
]


def magnetization(phi: torch.Tensor) -> torch.Tensor:
    """``M = sum_x phi_x`` per chain."""
    return phi.reshape(phi.shape[0], -1).sum(dim=1)


def abs_magnetization(phi: torch.Tensor) -> torch.Tensor:
    """``|M| / V`` per chain."""
    return magnetization(phi).abs() / phi[0].numel()


def two_point_susceptibility(phi: torch.Tensor) -> torch.Tensor:
    """``M^2 / V`` per chain; its ensemble mean is ``chi_2 = sum_x G(x)``."""
    return magnetization(phi).square() / phi[0].numel()


def two_point_function(phi: torch.Tensor) -> torch.Tensor:
    """``G(x) = (1/V) sum_y phi_y phi_{y+x}`` for every separation ``x``; ``[B, L...]``.

    Computed by FFT (translation average of one configuration).
    """
    dims = tuple(range(1, phi.ndim))
    f = torch.fft.fftn(phi, dim=dims)
    g = torch.fft.ifftn(f.conj() * f, dim=dims).real
    return g / phi[0].numel()


def zero_momentum_correlator(phi: torch.Tensor) -> torch.Tensor:
    """``C(t) = sum_{x-vec} G(t, x-vec)`` along axis 0 (time); ``[B, L_0]``."""
    g = two_point_function(phi)
    return g.reshape(g.shape[0], g.shape[1], -1).sum(dim=2)


def timeslice_correlator(phi: torch.Tensor, t: int) -> torch.Tensor:
    """``O(t) = (1/L_0) sum_t' phibar(t') phibar(t' + t)``, ``phibar`` the spatial mean; ``[B]``.

    The control-variate observable of Bedaque and Oh at ``t = L_0 / 2``; equals
    ``C(t) / (V / L_0)`` with ``C`` the zero-momentum correlator.
    """
    bar = phi.reshape(phi.shape[0], phi.shape[1], -1).mean(dim=2)
    return (bar * torch.roll(bar, -t, dims=1)).mean(dim=1)
