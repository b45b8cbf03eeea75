"""Vector fields for Schwinger-Dyson control variates (the ``g`` of ``estimators.control_variates``).

A ``VectorField`` maps configurations ``[B, *field]`` to ``g`` of the same shape and gives
its exact divergence ``sum_i dg_i / dx_i`` per configuration, ``[B]``.

- ``ShiftedMLP`` (scalar fields ``[B, L...]``): ``g_x(phi) = g_0(T_x phi)`` with
  ``(T_x phi)_y = phi_{x+y}`` and ``g_0`` an MLP of the whole shifted field without biases
  (tanh), output layer initialised to zero: translation equivariant by construction.
  ``hidden = ()`` is the linear field ``g_x = sum_y w_y phi_{x+y}``. Its divergence is
  ``sum_x dg_0/dpsi_0 (T_x phi)``: one backward pass of the layers after the first.
- ``PlaquetteVectorField`` (U(1) link angles ``[B, d, L...]``): ``g_l = sum_{P ni l} s_{P,l}
  h(theta_P)`` with ``h`` an MLP of ``(cos theta_P, sin theta_P)`` and ``s_{P,l} = +-1`` the
  orientation of link ``l`` in ``P``: gauge invariant, periodic in every angle (no
  boundary term on the compact group). ``dtheta_P / dtheta_l = s_{P,l}``, so its divergence is
  ``4 sum_P h'(theta_P)`` (four links per plaquette).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Protocol, cast

import torch

from ..lattice import U1, shift
from ..theories.gauge import planes, plaquette_field

__all__ = ["VectorField", "ShiftedMLP", "PlaquetteVectorField", "shifted_fields"]


class VectorField(Protocol):
    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def divergence(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_and_divergence(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class TrainableVectorField(VectorField, Protocol):
    """A ``VectorField`` with weights to train (a ``torch.nn.Module``: ``ShiftedMLP``, ...)."""

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...


def _mlp(widths: tuple[int, ...], bias: bool, dtype: torch.dtype) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [torch.nn.Linear(a, b, bias=bias, dtype=dtype), torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers[:-1])
    last = cast(torch.nn.Linear, net[-1])  # layers alternate Linear, Tanh: the last kept is a Linear
    with torch.no_grad():
        last.weight.zero_()
        if bias:
            last.bias.zero_()
    return net


def shifted_fields(phi: torch.Tensor) -> torch.Tensor:
    """``[B, V, V]``: row ``x`` is ``T_x phi`` flattened, ``(T_x phi)_y = phi_{x+y}`` (periodic)."""
    lattice = phi.shape[1:]
    coords = torch.stack(torch.meshgrid(*[torch.arange(n, device=phi.device) for n in lattice], indexing="ij"), -1)
    coords = coords.reshape(-1, len(lattice))  # [V, d], row-major
    total = (coords[:, None, :] + coords[None, :, :]) % torch.tensor(lattice, device=phi.device)
    flat = sum(total[..., k] * math.prod(lattice[k + 1 :]) for k in range(len(lattice)))
    return phi.reshape(phi.shape[0], -1)[:, flat]


class ShiftedMLP(torch.nn.Module):
    """Translation-equivariant ``g`` on scalar fields of shape ``lattice``.

    ``g_0``'s first layer acts on the shifted field, ``h_j(x) = sum_y W_jy phi_{x+y}``: a
    periodic cross-correlation, computed by FFT for all ``x`` at once (``O(V log V)``, not
    the ``O(V^2)`` of ``shifted_fields``); the later layers act on the hidden vector at each
    ``x`` separately. Hence ``dg_x/dphi_x = sum_j dG/dh_j(x) W_j0``: the divergence from one
    backward pass through the pointwise layers.
    """

    def __init__(self, lattice: tuple[int, ...], hidden: tuple[int, ...] = (), dtype=torch.float64):
        super().__init__()
        self.lattice = tuple(lattice)
        widths = (math.prod(self.lattice), *hidden, 1)
        self.g0 = _mlp(widths, bias=False, dtype=dtype)

    def _first(self, phi: torch.Tensor) -> torch.Tensor:
        """``h [B, V, h_1]``: the first layer on every shifted field."""
        dims = tuple(range(1, phi.ndim))
        first = cast(torch.nn.Linear, self.g0[0])  # _mlp: the first layer is a Linear
        w = first.weight.reshape(-1, *self.lattice)  # [h_1, L...]
        spec = torch.fft.fftn(phi, dim=dims)[:, None] * torch.fft.fftn(w, dim=dims).conj()[None]
        h = torch.fft.ifftn(spec, dim=tuple(d + 1 for d in dims)).real
        return h.reshape(phi.shape[0], w.shape[0], -1).transpose(1, 2)

    def _rest(self, h: torch.Tensor) -> torch.Tensor:
        return self.g0[1:](h)[..., 0] if len(self.g0) > 1 else h[..., 0]

    def forward(self, phi: torch.Tensor) -> torch.Tensor:
        return self._rest(self._first(phi)).reshape(phi.shape)

    def divergence(self, phi: torch.Tensor) -> torch.Tensor:
        """Exact ``sum_x dg_x / dphi_x`` per configuration ``[B]`` (differentiable in the weights)."""
        return self.forward_and_divergence(phi)[1]

    def forward_and_divergence(self, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g`` and its divergence from one forward pass."""
        first = cast(torch.nn.Linear, self.g0[0])  # _mlp: the first layer is a Linear
        w0 = first.weight[:, 0]  # [h_1]: the weight of psi_0 = phi_x
        with torch.enable_grad():
            h = self._first(phi.detach())
            if len(self.g0) == 1:  # linear: g_x = h(x), dg_x/dphi_x = w_0
                return h[..., 0].reshape(phi.shape), w0[0] * h.shape[1] * torch.ones_like(h[:, 0, 0])
            out = self._rest(h)
            (dh,) = torch.autograd.grad(out.sum(), h, create_graph=True)
        return out.reshape(phi.shape), (dh * w0).sum(dim=(1, 2))


class PlaquetteVectorField(torch.nn.Module):
    """Gauge-invariant ``g`` on U(1) link angles from one MLP ``h(cos theta_P, sin theta_P)``."""

    def __init__(self, hidden: tuple[int, ...] = (8,), dtype=torch.float64):
        super().__init__()
        self.h = _mlp((2, *hidden, 1), bias=True, dtype=dtype)

    def _h(self, theta_p: torch.Tensor) -> torch.Tensor:
        return self.h(torch.stack([torch.cos(theta_p), torch.sin(theta_p)], dim=-1))[..., 0]

    def _assemble(self, links: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        dim = links.shape[1]
        g = [torch.zeros_like(links[:, 0]) for _ in range(dim)]
        for p, (mu, nu) in enumerate(planes(dim)):
            s = h[:, p]
            g[mu] = g[mu] + s - shift(s, nu, -1)
            g[nu] = g[nu] - s + shift(s, mu, -1)
        return torch.stack(g, dim=1)

    def forward(self, links: torch.Tensor) -> torch.Tensor:
        return self._assemble(links, self._h(plaquette_field(links, U1())))

    def divergence(self, links: torch.Tensor) -> torch.Tensor:
        """Exact ``sum_l dg_l / dtheta_l`` per configuration ``[B]``."""
        return self.forward_and_divergence(links)[1]

    def forward_and_divergence(self, links: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            theta = plaquette_field(links.detach(), U1()).requires_grad_(True)
            h = self._h(theta)
            (dh,) = torch.autograd.grad(h.sum(), theta, create_graph=True)
        return self._assemble(links, h), 4.0 * dh.reshape(links.shape[0], -1).sum(dim=1)
