"""Gauge observables: plaquette, Polyakov loop, Wilson loops, field strength, charges.

Links are ``[B, d, L_0, ..., L_{d-1}]`` angles (U(1)) or ``[B, d, L..., N, N]``
(SU(N)); every function returns one value per chain (``[B]``) unless it says
otherwise. Axis 0 of the lattice is time.
"""

from __future__ import annotations

import math

import torch

from ..lattice import SU, U1, GaugeGroup, shift
from ..theories import planes, plaquette_field

__all__ = [
    "plaquette",
    "polyakov_loop",
    "wilson_loop",
    "topological_charge_u1_2d",
    "clover_field_strength",
    "energy_density",
    "topological_charge",
]


def _per_chain_mean(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).mean(dim=1)


def plaquette(links: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """``Re tr U_P / N`` averaged over sites and planes (U(1): ``cos theta_P``)."""
    return _per_chain_mean(group.re_trace(plaquette_field(links, group)))


def _line(links: torch.Tensor, group: GaugeGroup, mu: int, length: int) -> torch.Tensor:
    """Straight Wilson line ``U_mu(x) U_mu(x+mu) ... U_mu(x+(length-1) mu)`` at every ``x``."""
    u = links[:, mu]
    line = u
    for k in range(1, length):
        line = group.mul(line, shift(u, mu, k))
    return line


def polyakov_loop(links: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """Complex ``tr prod_t U_0(t, x) / N`` averaged over spatial sites."""
    loops = _line(links, group, 0, links.shape[2])[:, 0]  # start at t = 0
    return group.trace(loops).reshape(links.shape[0], -1).mean(dim=1)


def wilson_loop(links: torch.Tensor, group: GaugeGroup, r: int, t: int) -> torch.Tensor:
    """``Re tr W / N`` of ``r x t`` loops (``t`` along time, ``r`` along each spatial axis).

    Averaged over positions and the ``d - 1`` spatial directions.
    """
    dim = links.shape[1]
    if r < 1 or t < 1:
        raise ValueError(f"wilson_loop: r = {r}, t = {t}; allowed: r >= 1 and t >= 1")
    time_line = _line(links, group, 0, t)
    values = []
    for mu in range(1, dim):
        space_line = _line(links, group, mu, r)
        a = group.mul(space_line, shift(time_line, mu, r))
        b = group.mul(time_line, shift(space_line, 0, t))
        values.append(_per_chain_mean(group.re_trace(group.mul(a, group.adj(b)))))
    return torch.stack(values).mean(dim=0)


def topological_charge_u1_2d(links: torch.Tensor) -> torch.Tensor:
    """Geometric charge ``(1/2pi) sum_P arg exp(i theta_P)``, ``arg`` in ``(-pi, pi]``.

    Integer-valued on every configuration of the 2D torus (returned as float).
    """
    if links.shape[1] != 2:
        raise ValueError(f"topological_charge_u1_2d: d = {links.shape[1]}; allowed: 2")
    theta = U1().project(plaquette_field(links, U1()))
    return theta.reshape(links.shape[0], -1).sum(dim=1) / (2 * math.pi)


def clover_field_strength(links: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """Clover field strength ``F_{mu nu}(x)`` for every plane of ``planes(d)``.

    ``Q_{mu nu}`` is the sum of the four plaquette leaves around ``x`` (all oriented
    ``mu -> nu``); ``F = (Q - Q^dag) / 8i`` minus its trace for SU(N), so that
    ``U_P = exp(i F)`` to leading order. Shape ``[B, n_planes, L..., N, N]``
    (``N = 1`` for U(1)), hermitian.
    """
    mats = links if isinstance(group, SU) else U1().to_matrix(links)
    dim = mats.shape[1]
    out = []
    for mu, nu in planes(dim):
        u_mu, u_nu = mats[:, mu], mats[:, nu]
        plaq = u_mu @ shift(u_nu, mu) @ (u_nu @ shift(u_mu, nu)).mH  # P(y), base point y
        transport = u_mu @ shift(u_nu, mu)  # y -> y + mu + nu
        leaves = (
            plaq
            + shift(u_mu.mH @ plaq @ u_mu, mu, -1)
            + shift(u_nu.mH @ plaq @ u_nu, nu, -1)
            + shift(shift(transport.mH @ plaq @ transport, mu, -1), nu, -1)
        )
        f = (leaves - leaves.mH) * (-1j / 8)
        if isinstance(group, SU):
            tr = torch.diagonal(f, dim1=-2, dim2=-1).sum(-1) / group.n
            f = f - tr[..., None, None] * torch.eye(group.n, dtype=f.dtype, device=f.device)
        out.append(f)
    return torch.stack(out, dim=1)


def _tr_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``Re tr(A B)`` over the trailing matrix axes."""
    return (a * b.mT).sum(dim=(-2, -1)).real


def energy_density(links: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """Clover action density ``E = (1/4) G^a_{mu nu} G^a_{mu nu} = sum_{mu<nu} tr F_{mu nu}^2``.

    Averaged over sites. For U(1), ``E = sum_{mu<nu} F_{mu nu}^2``.
    """
    f = clover_field_strength(links, group)
    return _per_chain_mean(_tr_product(f, f).sum(dim=1))


def topological_charge(links: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """4D clover charge ``Q = 1/(32 pi^2) sum_x eps_{mu nu rho sigma} tr F_{mu nu} F_{rho sigma}``.

    ``= 1/(4 pi^2) sum_x [tr F01 F23 - tr F02 F13 + tr F03 F12]`` (hermitian ``F``,
    generators normalised to 1/2), integer in the continuum. Use on smooth (flowed)
    fields.
    """
    if links.shape[1] != 4:
        raise ValueError(f"topological_charge: d = {links.shape[1]}; allowed: 4")
    f = clover_field_strength(links, group)  # planes 01 02 03 12 13 23
    density = _tr_product(f[:, 0], f[:, 5]) - _tr_product(f[:, 1], f[:, 4]) + _tr_product(f[:, 2], f[:, 3])
    return density.reshape(links.shape[0], -1).sum(dim=1) / (4 * math.pi**2)
