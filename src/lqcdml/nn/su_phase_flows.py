"""Learnable maps of the SU(2) and SU(3) eigenphase cells: flows of class functions.

Each module is a ``PhaseMap`` (``theta -> (theta', log|det d theta'/d theta|)``) for
``nn.su_spectral_maps``; composed with it, a module maps a Haar-distributed matrix to one whose
density is a class function (docs/reference.md#conjugation-equivariant).

- SU(2): ``theta / pi`` in ``[0, 1]`` through a monotone rational-quadratic spline.
- SU(3): the sorted zero-sum phases ``x <= y <= z`` (``z - x <= 2 pi``) to the unit square,
  ``w = (z - x) / (2 pi)``, ``r = 3 y / (4 pi w) + 1/2`` (``|det d(w, r)/d(x, y)| = 3 / (4 pi^2 w)``),
  then coupling layers of splines, each moving one coordinate with parameters from the other
  (a small network), and back. Splines fix 0 and 1: the cell's walls stay where they are.

``context`` (optional, ``[..., C]``): features the parameters depend on (in a lattice coupling
layer, gauge-invariant features of frozen loops); ``None`` for a single matrix. These are maps
of phases with a context, not layers of field space: their inverse is ``inverse`` (the
``InvertibleLayer`` contract is ``nn.su_equivariant``'s).

Training a single matrix's flow (reverse KL from Haar, 200 Adam steps at batch 100;
``benchmarks/su_flow.py``): the optimiser's noise limits it, not the maps. At a constant
learning rate the ESS on the SU(3) benchmark density scatters from step to step (0.66-0.97 over
steps 170-200); decaying the rate (cosine) gives 0.98-0.99, and one plaquette's density
0.99-0.996; the path gradient (``log q`` through ``inverse`` with the parameters held fixed)
0.9995 there. ``SU2PhaseFlow``'s free parameters (``context_dim = 0``) want a larger rate (0.05
against 0.01): Adam moves each by about the rate per step, and a spline for beta = 6 needs
logits several units apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .rq_spline import n_spline_params, rq_spline, rq_spline_inverse

__all__ = ["SU2PhaseFlow", "SU3PhaseFlow", "su3_to_square", "square_to_su3"]

TWO_PI = 2 * math.pi


def su3_to_square(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted zero-sum phases ``[..., 3]`` to ``(w, r)`` ``[..., 2]`` in the unit square, with
    ``log|det d(w, r)/d(theta_1, theta_2)|``."""
    x, y, z = theta.unbind(-1)
    w = (z - x) / TWO_PI
    r = 3 * y / (2 * TWO_PI * w) + 0.5
    return torch.stack([w, r], -1), math.log(3 / (4 * math.pi**2)) - torch.log(w)


def square_to_su3(wr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of ``su3_to_square``, with ``log|det d(theta_1, theta_2)/d(w, r)|``."""
    w, r = wr.unbind(-1)
    y = (r - 0.5) * 2 * TWO_PI * w / 3
    x, z = (-y - TWO_PI * w) / 2, (-y + TWO_PI * w) / 2
    return torch.stack([x, y, z], -1), torch.log(w) - math.log(3 / (4 * math.pi**2))


def _zero_linear(n_in: int, n_out: int, dtype: torch.dtype) -> nn.Linear:
    layer = nn.Linear(n_in, n_out, dtype=dtype)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class SU2PhaseFlow(nn.Module):
    """``theta -> pi s(theta / pi)`` with a spline ``s`` of ``bins`` bins; parameters free
    (``context_dim = 0``) or from a network of the context."""

    def __init__(self, bins: int = 8, context_dim: int = 0, hidden: int = 32, dtype=torch.float64):
        super().__init__()
        self.bins = bins
        n = n_spline_params(bins)
        # the last layer (or the free parameters) zero: the spline starts as the identity
        self.net: nn.Module | None = None
        self.params = nn.Parameter(torch.zeros(n, dtype=dtype), requires_grad=not context_dim)
        if context_dim:
            self.net = nn.Sequential(
                nn.Linear(context_dim, hidden, dtype=dtype), nn.Tanh(), _zero_linear(hidden, n, dtype)
            )

    def forward(self, theta: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        params: torch.Tensor = self.params if self.net is None else self.net(context)
        x, log_d = rq_spline(theta / math.pi, params, self.bins)
        return math.pi * x, log_d

    def inverse(self, theta: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse map and its ``log|det|``."""
        params: torch.Tensor = self.params if self.net is None else self.net(context)
        x, log_d = rq_spline_inverse(theta / math.pi, params, self.bins)
        return math.pi * x, log_d


class SU3PhaseFlow(nn.Module):
    """Coupling layers on the SU(3) phase square: layer ``i`` moves ``w`` (even ``i``) or ``r``
    (odd) by a spline whose parameters a network makes of the other coordinate (and the context)."""

    def __init__(self, layers: int = 4, bins: int = 8, hidden: int = 32, context_dim: int = 0, dtype=torch.float64):
        super().__init__()
        self.bins = bins
        n = n_spline_params(bins)
        self.nets = nn.ModuleList()
        for _ in range(layers):
            net = nn.Sequential(
                nn.Linear(1 + context_dim, hidden, dtype=dtype),
                nn.Tanh(),
                nn.Linear(hidden, hidden, dtype=dtype),
                nn.Tanh(),
                _zero_linear(hidden, n, dtype),  # every layer starts as the identity
            )
            self.nets.append(net)

    def _layer(
        self, i: int, wr: torch.Tensor, context: torch.Tensor | None, inverse: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``i`` (or its inverse) on ``(w, r)`` ``[..., 2]``: the moved coordinate's spline,
        parameters from the fixed one (and the context); the new ``(w, r)`` and ``log|det|``."""
        moved, fixed = (0, 1) if i % 2 == 0 else (1, 0)
        features = wr[..., fixed : fixed + 1]
        if context is not None:
            features = torch.cat([features, context], -1)
        spline = rq_spline_inverse if inverse else rq_spline
        new, log_d = spline(wr[..., moved], self.nets[i](features), self.bins)
        out = torch.stack([new, wr[..., 1]], -1) if moved == 0 else torch.stack([wr[..., 0], new], -1)
        return out, log_d

    def forward(self, theta: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        wr, log_det = su3_to_square(theta)
        for i in range(len(self.nets)):
            wr, log_d = self._layer(i, wr, context, inverse=False)
            log_det = log_det + log_d
        theta_new, log_back = square_to_su3(wr)
        return theta_new, log_det + log_back

    def inverse(self, theta: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse map and its ``log|det|`` (the layers undone in reverse order)."""
        wr, log_det = su3_to_square(theta)
        for i in reversed(range(len(self.nets))):
            wr, log_d = self._layer(i, wr, context, inverse=True)
            log_det = log_det + log_d
        theta_old, log_back = square_to_su3(wr)
        return theta_old, log_det + log_back
