"""Wilson gauge action for U(1) and SU(N) in any dimension, plaquettes and staples.

Links are ``[B, d, L_0, ..., L_{d-1}]`` angles (U(1)) or ``[B, d, L..., N, N]``
matrices (SU(N)). The plaquette in plane ``(mu, nu)`` at ``x`` is
``U_P = U_mu(x) U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import kernels
from ..lattice import SU, U1, GaugeGroup, Manifold, shift

__all__ = ["WilsonGaugeAction", "planes", "plaquette_field", "staple_sum"]


def planes(dim: int) -> list[tuple[int, int]]:
    """The ``d (d - 1) / 2`` oriented planes ``(mu, nu)``, ``mu < nu``, in lexical order."""
    return [(mu, nu) for mu in range(dim) for nu in range(mu + 1, dim)]


def _check_links(links: torch.Tensor, group: Manifold) -> int:
    dim = links.shape[1]
    lattice_ndim = links.ndim - 2 - group.internal_ndim
    if lattice_ndim != dim:
        raise ValueError(
            f"links of shape {tuple(links.shape)} do not match {group!r}: expected "
            f"[B, d, L_0, ..., L_(d-1)] + {group.internal_ndim} internal axes with d = {dim}"
        )
    return dim


def plaquette_field(links: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """Plaquettes of all planes, stacked on axis 1 in the order of ``planes(d)``.

    U(1): angles ``theta_P`` ``[B, n_planes, L...]``; SU(N): ``[B, n_planes, L..., N, N]``.
    """
    dim = _check_links(links, group)
    out = []
    for mu, nu in planes(dim):
        u_mu, u_nu = links[:, mu], links[:, nu]
        a = group.mul(u_mu, shift(u_nu, mu))
        b = group.mul(u_nu, shift(u_mu, nu))
        out.append(group.mul(a, group.adj(b)))
    return torch.stack(out, dim=1)


def staple_sum(links: torch.Tensor, group: SU) -> torch.Tensor:
    """Staple sums ``A_mu(x)`` with ``sum_P Re tr U_P = Re tr U_mu(x) A_mu(x) + (rest)``.

    ``A_mu(x) = sum_{nu != mu} [ U_nu(x+mu) U_mu(x+nu)^dag U_nu(x)^dag
                                + U_nu(x+mu-nu)^dag U_mu(x-nu)^dag U_nu(x-nu) ]``.
    Shape of ``links``.
    """
    dim = _check_links(links, group)
    staples = [torch.zeros_like(links[:, 0]) for _ in range(dim)]
    for mu, nu in planes(dim):
        u_mu, u_nu = links[:, mu], links[:, nu]
        u_nu_xmu = shift(u_nu, mu)
        u_mu_xnu = shift(u_mu, nu)
        # the two products that make up the plaquette, U_P = a b^dag
        a = u_mu @ u_nu_xmu  # U_mu(x) U_nu(x+mu)
        b = u_nu @ u_mu_xnu  # U_nu(x) U_mu(x+nu)
        # direction mu: upper staple at x, lower staple from x - nu
        staples[mu] = staples[mu] + u_nu_xmu @ b.mH + shift(u_nu_xmu.mH @ u_mu.mH @ u_nu, nu, -1)
        # direction nu: the same plaquettes seen from the nu link
        staples[nu] = staples[nu] + u_mu_xnu @ a.mH + shift(u_mu_xnu.mH @ u_nu.mH @ u_mu, mu, -1)
    return torch.stack(staples, dim=1)


@dataclass(frozen=True)
class WilsonGaugeAction:
    """``S = beta sum_P (1 - Re tr U_P / N)``; U(1): ``beta sum_P (1 - cos theta_P)``."""

    beta: float
    group: GaugeGroup

    def __post_init__(self) -> None:
        if not isinstance(self.group, (U1, SU)):
            raise ValueError(f"wilson gauge action: group = {self.group!r}; allowed: U1(), SU(N)")

    def action(self, links: torch.Tensor) -> torch.Tensor:
        re_tr = self.group.re_trace(plaquette_field(links, self.group))
        return self.beta * (1.0 - re_tr).reshape(links.shape[0], -1).sum(dim=1)

    def force(self, links: torch.Tensor) -> torch.Tensor:
        """Lie-algebra gradient of the action, shape of ``links``.

        U(1): ``beta sum_{nu != mu} [sin theta_{mu nu}(x) - sin theta_{mu nu}(x - nu)]``.
        SU(N): ``beta / (2N) TA(U_mu(x) A_mu(x))`` with the staple sum ``A`` and
        ``TA(X) = (X - X^dag)/2i - trace``; the compiled kernel where it applies
        (``force_torch`` is the reference).
        """
        if isinstance(self.group, SU) and kernels.enabled(links, n=self.group.n):
            _check_links(links, self.group)
            return kernels.gauge_force(links, self.beta)
        return self.force_torch(links)

    def force_torch(self, links: torch.Tensor) -> torch.Tensor:
        """The force in torch: the reference, and the path of other devices and groups."""
        if isinstance(self.group, SU):
            x = links @ staple_sum(links, self.group)
            return (self.beta / (2 * self.group.n)) * self.group.traceless_hermitian(x)
        dim = _check_links(links, self.group)  # U(1)
        sin_p = torch.sin(plaquette_field(links, self.group))
        force = [torch.zeros_like(links[:, 0]) for _ in range(dim)]
        for p, (mu, nu) in enumerate(planes(dim)):
            s = sin_p[:, p]
            force[mu] = force[mu] + s - shift(s, nu, -1)
            force[nu] = force[nu] - s + shift(s, mu, -1)
        return self.beta * torch.stack(force, dim=1)
