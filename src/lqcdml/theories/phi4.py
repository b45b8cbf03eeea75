"""Real scalar phi^4 theory on a periodic lattice in any dimension."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..lattice import Real, shift

__all__ = ["Phi4Action"]

CONVENTIONS = ("flow", "standard")


@dataclass(frozen=True)
class Phi4Action:
    """phi^4 action; fields ``[B, L_0, ..., L_{d-1}]`` real.

    ``convention = "flow"`` (docs/conventions.md#phi4, the flow papers):
        ``S = sum_x [ -2 sum_mu phi_x phi_{x+mu} + (m^2 + 2d) phi_x^2 + lam phi_x^4 ]``,
        i.e. ``sum_x [ (d phi)^2 + m^2 phi^2 + lam phi^4 ]``.
    ``convention = "standard"``:
        ``S = sum_x [ 1/2 sum_mu (phi_{x+mu} - phi_x)^2 + m^2/2 phi_x^2 + lam/4! phi_x^4 ]``.

    Both are ``sum_x [ -h sum_mu phi_x phi_{x+mu} + c2 phi_x^2 + c4 phi_x^4 ]`` with the
    coefficients of ``coefficients(d)``.
    """

    m2: float
    lam: float
    convention: str = "flow"
    group: Real = field(default_factory=Real, compare=False)

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise ValueError(f"phi4: convention = {self.convention!r}; allowed: {', '.join(CONVENTIONS)}")
        if self.lam < 0:
            raise ValueError(f"phi4: lam = {self.lam}; allowed: lam >= 0 (action bounded below)")

    def coefficients(self, dim: int) -> tuple[float, float, float]:
        """``(h, c2, c4)``: hopping, quadratic and quartic coefficients in ``dim`` dimensions."""
        if self.convention == "flow":
            return 2.0, self.m2 + 2.0 * dim, self.lam
        return 1.0, 0.5 * self.m2 + dim, self.lam / 24.0

    def action(self, phi: torch.Tensor) -> torch.Tensor:
        dim = phi.ndim - 1
        h, c2, c4 = self.coefficients(dim)
        hop = sum(phi * shift(phi, mu) for mu in range(dim))
        phi2 = phi * phi
        density = -h * hop + c2 * phi2 + c4 * phi2 * phi2
        return density.reshape(phi.shape[0], -1).sum(dim=1)

    def force(self, phi: torch.Tensor) -> torch.Tensor:
        """``dS / d phi_x = -h sum_mu (phi_{x+mu} + phi_{x-mu}) + 2 c2 phi_x + 4 c4 phi_x^3``."""
        dim = phi.ndim - 1
        h, c2, c4 = self.coefficients(dim)
        neighbours = sum(shift(phi, mu, 1) + shift(phi, mu, -1) for mu in range(dim))
        return -h * neighbours + 2.0 * c2 * phi + 4.0 * c4 * phi * phi * phi
