"""Trainable stout smearing: a gauge-covariant layer and networks of such layers.

One layer (Morningstar-Peardon, with trainable weights):

    U'_mu(x) = exp(Q_mu(x)) U_mu(x),   Q_mu(x) = TA(C_mu(x) U_mu(x)^dag),

``TA(X) = (X - X^dag)/2 - tr(X - X^dag)/(2N)``, ``C_mu = sum_types w_type S_mu^dag``
with ``S`` the staples of ``nn.gauge_loops`` (plaquette, rectangle, Polyakov line of
direction ``mu``; one weight per type, the Polyakov weight per direction). With the
staples of that module ``C U^dag = (U S)^dag``, so ``exp(Q) = exp(-i TH(U S))`` with
``TH(X) = TA(X) / i`` the group's ``traceless_hermitian``. Positive weights move each
link towards its staples (larger loops). All weights zero is the identity; every layer
maps SU(N) to SU(N) and commutes with gauge transformations.

Links: ``[B, d, L..., N, N]`` complex; weights are real parameters (float64 unless the
module is cast).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .. import kernels
from ..kernels import matmul
from ..lattice import SU
from .gauge_loops import loop_staple, polyakov_staples

__all__ = ["LOOP_TYPES", "StoutLayer", "GaugeCovariantNet", "stout_net", "stout_update"]

#: loop types a stout layer can weigh
LOOP_TYPES = ("plaquette", "rectangle", "polyakov")


def stout_update(
    group: SU, links: torch.Tensor, staple: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """``exp(TA(C U^dag)) W`` with ``C = staple^dag`` (``staple`` in the convention of
    ``nn.gauge_loops``: ``U staple`` is a closed loop at ``x``) and ``W = target`` (``None``: ``W
    = U``, a stout layer; CASK's attention rotates its input by a rotation made on its value
    links); shapes of ``links``. SU(2) and SU(3) on CPU through the compiled update and its
    vector-Jacobian product (``kernels.su2_stout_update``, ``kernels.su3_stout_update``,
    ``kernels.stout_rotation``)."""
    w = links if target is None else target
    if links.shape == staple.shape == w.shape and kernels.enabled_differentiable(links, staple, w, n=group.n):
        if target is not None:
            return kernels.stout_rotation(links, staple, target)
        update = kernels.su2_stout_update if group.n == 2 else kernels.su3_stout_update
        return update(links, staple)
    return matmul(group.expi(-group.traceless_hermitian(matmul(links, staple))), w)


class StoutLayer(torch.nn.Module):
    """One stout-smearing step with a trainable weight per loop type.

    ``loops``: a subset of ``LOOP_TYPES``. ``dim`` is the number of directions (for the
    per-direction Polyakov weights). Weights start at ``init`` (0: the identity).
    """

    def __init__(self, group: SU, dim: int, loops: Sequence[str] = ("plaquette",), init: float = 0.0):
        super().__init__()
        unknown = [t for t in loops if t not in LOOP_TYPES]
        if unknown or not loops:
            raise ValueError(
                f"stout layer loops = {list(loops)}; allowed: a non-empty subset of {', '.join(LOOP_TYPES)}"
            )
        self.group, self.dim, self.loops = group, int(dim), tuple(dict.fromkeys(loops))
        for t in self.loops:
            shape = (self.dim,) if t == "polyakov" else ()
            self.register_parameter(t, torch.nn.Parameter(torch.full(shape, float(init), dtype=torch.float64)))

    def staple(self, links: torch.Tensor) -> torch.Tensor:
        """The weighted staple sum ``sum_types w S_mu(x)``, shape of ``links``."""
        real = links.real.dtype
        terms = []
        for t in self.loops:
            w = getattr(self, t).to(real)
            if t == "polyakov":
                terms.append(w.reshape((1, self.dim) + (1,) * (links.ndim - 2)) * polyakov_staples(links))
            else:
                terms.append(w * loop_staple(links, t))
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def forward(self, links: torch.Tensor) -> torch.Tensor:
        return stout_update(self.group, links, self.staple(links))


class GaugeCovariantNet(torch.nn.Module):
    """A stack of gauge-covariant layers applied in order (``links -> links``)."""

    def __init__(self, layers: Sequence[torch.nn.Module]):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, links: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            links = layer(links)
        return links


def stout_net(
    group: SU, dim: int, n_layers: int, loops: Sequence[str] = ("plaquette", "polyakov"), init: float = 0.0
) -> GaugeCovariantNet:
    """``n_layers`` trainable stout layers (the covariant net of self-learning HMC)."""
    return GaugeCovariantNet([StoutLayer(group, dim, loops, init) for _ in range(n_layers)])
