"""Gauge transformations of link fields."""

from __future__ import annotations

import torch

from .geometry import shift
from .groups import GaugeGroup

__all__ = ["gauge_transform"]


def gauge_transform(links: torch.Tensor, omega: torch.Tensor, group: GaugeGroup) -> torch.Tensor:
    """``U_mu(x) -> Omega(x) U_mu(x) Omega(x + mu)^dag``.

    ``links``: ``[B, d, L..., *internal]``; ``omega``: a site field ``[B, L..., *internal]``
    of group elements (angles for U(1)).
    """
    dim = links.shape[1]
    out = [group.mul(group.mul(omega, links[:, mu]), group.adj(shift(omega, mu))) for mu in range(dim)]
    return torch.stack(out, dim=1)
