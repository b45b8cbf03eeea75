"""Gauge-equivariant coupling layers for 2D SU(N) lattice gauge theory (N = 2, 3).

The U(1) construction of ``nn.u1_equivariant`` (Kanwar et al., arXiv:2003.06413) made
non-abelian (Boyda et al., arXiv:2008.05456), with the same masks (``u1_link_masks``): a layer
``(mu, offset)`` updates the links ``U_mu(x)`` with ``x_mu % 2 == offset % 2`` and
``x_nu % 4 == offset``; each lies in one active plaquette, and no two share a plaquette.

For an updated link ``U`` let ``W`` be the untraced loop of its active plaquette that starts
with ``U`` (``mu = 0``: ``W = P(x)``; ``mu = 1``: ``W = U_0(x - e_0)^dag P(x - e_0) U_0(x - e_0)``)
and ``S = U^dag W`` the staple of the other three links. The layer sets ``W' = h(W)`` with a
conjugation-equivariant map of the eigenphases (``nn.su_spectral_maps``) whose parameters come
from the frozen plaquettes' traces through a periodic convolution, and ``U' = W' S^dag =
h(W) W^dag U``. Under a gauge transformation ``W`` is conjugated by ``g(x)`` and ``S`` changes by
``g(x + mu) . g(x)^dag``, so ``U'`` transforms as a link: the layer is gauge equivariant. The
Jacobian is block-diagonal per updated link and, Haar measure being right-invariant, each block
is that of ``h`` on ``W``: ``log|det| = sum over updated links of log_det(h)`` (with the Weyl
factor). Links are complex ``[B, 2, L_0, L_1, N, N]``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..lattice import SU, shift
from ..theories.gauge import plaquette_field
from .conv import conv_net
from .flow import FlowModel
from .prior import HaarPrior, cast_precision
from .su_phase_flows import SU2PhaseFlow, SU3PhaseFlow
from .su_spectral_maps import su2_spectral_map, su3_spectral_map
from .transform import InvertibleLayer
from .u1_equivariant import u1_link_masks

__all__ = ["SUEquivariantCoupling", "su_coupling_stack", "su_flow"]


class SUEquivariantCoupling(InvertibleLayer):
    """One coupling layer ``(mu, offset)`` on 2D SU(``n``) links of lattice ``shape``; ``net``
    maps the frozen plaquettes' features ``[B, C_in, L_0, L_1]`` (``C_in``: 1 for SU(2), the real
    part of ``tr P / N``; 2 for SU(3), with the imaginary part) to a context ``[B, C, L_0, L_1]``
    of the phase flow (``SU2PhaseFlow`` / ``SU3PhaseFlow`` built with ``context_dim = C``)."""

    link_mask: torch.Tensor
    frozen: torch.Tensor

    def __init__(
        self, shape: tuple[int, ...], n: int, mu: int, offset: int, net: nn.Module, flow: SU2PhaseFlow | SU3PhaseFlow
    ):
        super().__init__()
        if n not in (2, 3):
            raise ValueError(f"su coupling: n = {n!r}; allowed: 2, 3")
        self.shape, self.n, self.mu = tuple(shape), n, mu
        self.group = SU(n)
        links, _, _, frozen = u1_link_masks(self.shape, mu, offset)
        self.register_buffer("link_mask", links)
        self.register_buffer("frozen", frozen)
        self.net, self.flow = net, flow
        self._map = su2_spectral_map if n == 2 else su3_spectral_map

    @staticmethod
    def n_features(n: int) -> int:
        """Channels of the frozen plaquettes' features for SU(``n``)."""
        return 1 if n == 2 else 2

    def _loops(self, x: torch.Tensor, plaq: torch.Tensor) -> torch.Tensor:
        """``W`` ``[B, L_0, L_1, N, N]``: the active loop starting with ``U_mu(x)``, at every ``x``
        (``plaq``: the plaquettes ``P(x)`` of ``x``)."""
        if self.mu == 0:
            return plaq
        p, u0 = shift(plaq, 0, -1), shift(x[:, 0], 0, -1)  # P(x - e_0), U_0(x - e_0)
        return u0.mH @ p @ u0

    def _context(self, plaq: torch.Tensor) -> torch.Tensor:
        """Per-site context ``[B, L_0, L_1, C]`` from the frozen plaquettes of ``plaq`` only (at
        the active plaquette's corner: ``x`` for ``mu = 0``, ``x - e_0`` for ``mu = 1``)."""
        trace = torch.diagonal(plaq, dim1=-2, dim2=-1).sum(-1) / self.n
        frozen = self.frozen.to(trace.real.dtype)
        parts = [trace.real * frozen] + ([trace.imag * frozen] if self.n == 3 else [])
        context = self.net(torch.stack(parts, dim=1))  # [B, C, L_0, L_1]
        if self.mu == 1:
            context = shift(context, 0, -1, first_axis=2)  # corner x - e_0
        return context.movedim(1, -1)

    def _couple(self, x: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        plaq = plaquette_field(x, self.group)[:, 0]  # the one plane of 2D
        w = self._loops(x, plaq)
        context = self._context(plaq)  # frozen plaquettes: unchanged by the layer

        def phases(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if self.n == 2:
                theta = theta.clamp(1e-12, torch.pi - 1e-12)
            return self.flow.inverse(theta, context) if reverse else self.flow(theta, context)

        new, log_det = self._map(w, phases)
        mu = self.mu
        moved = new @ w.mH @ x[:, mu]
        mask = self.link_mask[..., None, None]
        updated = torch.where(mask, moved, x[:, mu])
        y = torch.stack([updated if d == mu else x[:, d] for d in range(2)], dim=1)
        return y, torch.where(self.link_mask, log_det, 0.0).flatten(1).sum(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, log|det dy/dx|)`` against Haar: ``[B, 2, L_0, L_1, N, N]``, ``[B]``."""
        return self._couple(x, reverse=False)

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dy|)``: the inverse of ``forward``."""
        return self._couple(y, reverse=True)


def su_coupling_stack(
    shape: tuple[int, ...], n: int, layers: int, hidden: int = 16, bins: int = 8
) -> list[SUEquivariantCoupling]:
    """``layers`` couplings cycling over ``mu in {0, 1}`` and ``offset in {0, 1, 2, 3}``, each
    with a one-hidden-layer periodic convolution of the frozen plaquettes (4 context channels)."""
    out = []
    c_in, context = SUEquivariantCoupling.n_features(n), 4
    for i in range(layers):
        mu, offset = i % 2, (i // 2) % 4
        net = conv_net(2, c_in, context, [hidden], kernel=3, final="tanh")
        flow = (
            SU2PhaseFlow(bins=bins, context_dim=context)
            if n == 2
            else SU3PhaseFlow(layers=2, bins=bins, context_dim=context)
        )
        out.append(SUEquivariantCoupling(shape, n, mu, offset, net, flow))
    return out


def su_flow(shape: tuple[int, ...], n: int, n_layers: int = 16, hidden: int = 16, bins: int = 8) -> FlowModel:
    """Haar prior on 2D SU(``n``) links ``[B, 2, L_0, L_1, n, n]`` and ``n_layers`` couplings
    (``su_coupling_stack``), in float64 (cast by the caller for another precision)."""
    if n_layers < 1:
        raise ValueError(f"su_flow: n_layers = {n_layers}; allowed: >= 1")
    shape = tuple(int(x) for x in shape)
    return cast_precision(
        FlowModel(HaarPrior((2, *shape, n, n)), su_coupling_stack(shape, n, n_layers, hidden, bins)), "float64"
    )
