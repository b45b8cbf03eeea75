"""CASK: a gauge-covariant attention block (covariant attention with stout kernel).

Query, key and value fields are three stout layers of the input, each with its own
weights: ``U^Q, U^K, U^V``. For each direction ``mu``, each ``nu != mu`` and each extent
``s = 1..S`` the attention weight at ``x`` is

    a_{mu nu s}(x) = tan(pi / (4 (N + 0.01)) * [Re tr U^Q_mu(x) W_{mu nu s}(U^K)
                                                - Re tr U_mu(x) W_{mu nu s}(U)]),

``W_{mu nu s}(V)`` the staple of the ``1 x s`` rectangle on the ``+nu`` side evaluated
on ``V`` (``nn.gauge_loops.rectangle_staple``). Both traces are gauge invariant, so is
``a``; the bracket is at most ``2N`` in size, so the tangent's argument stays below
``pi / 2``. The attention update

    U^A_mu(x) = exp(TA(C^A_mu(x) U^V_mu(x)^dag)) U_mu(x),
    C^A_mu = sum_{nu != mu, s} a_{mu nu s} W_{mu nu s}(U^V)^dag,

is covariant (``C^A U^V^dag`` transforms in the adjoint at ``x``), and a final stout
layer acts on ``U^A``. With every weight zero ``U^Q = U^K = U``, ``a = 0`` and the block
is the identity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..kernels import matmul
from ..lattice import SU
from .gauge_loops import rectangle_staple
from .stout import GaugeCovariantNet, StoutLayer, stout_update

__all__ = ["CASKBlock", "cask_net"]


class CASKBlock(torch.nn.Module):
    """One attention block: query/key/value stout layers, attention over ``1 x s``
    rectangles (``s = 1..extent``), then a final stout layer (all with ``loops``)."""

    def __init__(self, group: SU, dim: int, loops: Sequence[str] = ("plaquette",), extent: int = 2, init: float = 0.0):
        super().__init__()
        if int(extent) != extent or extent < 1:
            raise ValueError(f"cask extent = {extent!r}; allowed: an integer >= 1")
        self.group, self.dim, self.extent = group, int(dim), int(extent)
        self.query = StoutLayer(group, dim, loops, init)
        self.key = StoutLayer(group, dim, loops, init)
        self.value = StoutLayer(group, dim, loops, init)
        self.final = StoutLayer(group, dim, loops, init)
        self.scale = math.pi / (4 * (group.n + 0.01))

    def attention_staple(
        self, links: torch.Tensor, uq: torch.Tensor, uk: torch.Tensor, uv: torch.Tensor
    ) -> torch.Tensor:
        """``sum_{nu, s} a_{mu nu s}(x) W_{mu nu s}(U^V)`` for every ``mu``: shape of ``links``."""
        out = []
        for mu in range(self.dim):
            total = torch.zeros_like(links[:, mu])
            for nu in range(self.dim):
                if nu == mu:
                    continue
                for s in range(1, self.extent + 1):
                    arg = _re_tr(matmul(uq[:, mu], rectangle_staple(uk, mu, nu, s))) - _re_tr(
                        matmul(links[:, mu], rectangle_staple(links, mu, nu, s))
                    )
                    a = torch.tan(self.scale * arg)
                    total = total + a[..., None, None] * rectangle_staple(uv, mu, nu, s)
            out.append(total)
        return torch.stack(out, dim=1)

    def forward(self, links: torch.Tensor) -> torch.Tensor:
        uq, uk, uv = self.query(links), self.key(links), self.value(links)
        staple = self.attention_staple(links, uq, uk, uv)
        # exp(TA(C^A U^V^dag)) with C^A = staple^dag, i.e. exp(-i TH(U^V staple)), applied to U
        return self.final(stout_update(self.group, uv, staple, links))


def _re_tr(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised ``Re tr`` over the last two axes."""
    return torch.diagonal(x, dim1=-2, dim2=-1).sum(-1).real


def cask_net(
    group: SU,
    dim: int,
    n_blocks: int,
    loops: Sequence[str] = ("plaquette", "polyakov"),
    extent: int = 2,
    init: float = 0.0,
) -> GaugeCovariantNet:
    """``n_blocks`` CASK blocks in sequence."""
    return GaugeCovariantNet([CASKBlock(group, dim, loops, extent, init) for _ in range(n_blocks)])
