"""Special gauge configurations with known properties (test and calibration fields)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from .geometry import coordinates
from .groups import SU, U1, Manifold

__all__ = ["abelian_flux_links"]


def abelian_flux_links(
    shape: Sequence[int],
    fluxes: Mapping[tuple[int, int], Sequence[int] | int],
    group: Manifold,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Constant abelian field strength with integer flux quanta, one chain ``[1, d, L..., ...]``.

    ``fluxes[(mu, nu)]`` gives, for each diagonal colour component ``j``, the number of
    flux quanta ``n_j`` through the ``(mu, nu)`` plane: every plaquette of that plane
    is ``diag(exp(2 pi i n_j / (L_mu L_nu)))``. For SU(N) the ``n_j`` must sum to zero;
    for U(1) give one integer. Planes must not share a direction.

    In 4D with fluxes ``n`` in plane (0, 1) and ``m`` in plane (2, 3) the topological
    charge is ``sum_j n_j m_j``.
    """
    dim = len(shape)
    ncol = group.n if isinstance(group, SU) else 1
    if not isinstance(group, (U1, SU)):
        raise ValueError(f"abelian_flux_links: group = {group!r}; allowed: U1(), SU(N)")
    used: set[int] = set()
    x = [c.to(torch.float64) for c in coordinates(shape)]
    theta = torch.zeros((dim, *shape, ncol), dtype=torch.float64)
    for (mu, nu), n in fluxes.items():
        if not (0 <= mu < dim and 0 <= nu < dim and mu != nu) or used & {mu, nu}:
            raise ValueError(
                f"abelian_flux_links: plane ({mu}, {nu}); allowed: distinct directions in "
                f"0..{dim - 1}, no direction in two planes"
            )
        used |= {mu, nu}
        quanta = [int(n)] if isinstance(n, int) else [int(v) for v in n]
        if len(quanta) != ncol or (ncol > 1 and sum(quanta) != 0):
            raise ValueError(
                f"abelian_flux_links: fluxes[({mu}, {nu})] = {n!r}; allowed: {ncol} integers"
                + (" summing to 0" if ncol > 1 else "")
            )
        lmu, lnu = shape[mu], shape[nu]
        for j, q in enumerate(quanta):
            theta[nu, ..., j] += 2 * math.pi * q * x[mu] / (lmu * lnu)
            theta[mu, ..., j] += torch.where(x[mu] == lmu - 1, -2 * math.pi * q * x[nu] / lnu, 0.0)
    if isinstance(group, U1):
        return theta[..., 0].unsqueeze(0).to(dtype or torch.float64)
    phases = torch.polar(torch.ones_like(theta), theta)
    return torch.diag_embed(phases).unsqueeze(0).to(dtype or torch.complex128)
