"""Rational approximations in partial fractions, for functions of hermitian operators.

``r(x) = c0 + sum_k a_k / (x + b_k)`` with real ``b_k >= 0``: applied to an operator
by one multi-shift CG. The functions approximated are ``f(x) = x^power (x + shift)^shift_power``
(``shift_power = 0``: a plain power; Hasenbusch ratios ``((x + d) / x)^a`` have
``power = -a``, ``shift = d``, ``shift_power = a``). Every approximation states its range
and the maximal relative error over it, measured on a dense logarithmic grid when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RationalApproximation", "target_function", "zolotarev_inverse_sqrt"]


@dataclass(frozen=True)
class RationalApproximation:
    """``r(x) = c0 + sum_k residues[k] / (x + shifts[k])`` approximating
    ``x^power (x + shift)^shift_power`` on [lo, hi]."""

    c0: float
    residues: tuple[float, ...]
    shifts: tuple[float, ...]
    power: float
    lo: float
    hi: float
    max_relative_error: float
    shift: float = 0.0
    shift_power: float = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self.c0 + sum((a / (x + b) for a, b in zip(self.residues, self.shifts)), np.zeros_like(x))

    def target(self, x: np.ndarray) -> np.ndarray:
        """The function approximated, ``x^power (x + shift)^shift_power``."""
        return target_function(np.asarray(x, dtype=float), self.power, self.shift, self.shift_power)

    def relative_error(self, x: np.ndarray) -> np.ndarray:
        return self(x) / self.target(x) - 1.0


def target_function(x: np.ndarray, power: float, shift: float = 0.0, shift_power: float = 0.0) -> np.ndarray:
    """``x^power (x + shift)^shift_power``."""
    out = x**power
    return out * (x + shift) ** shift_power if shift_power else out


def _measure_error(fn, power: float, lo: float, hi: float, shift: float = 0.0, shift_power: float = 0.0) -> float:
    """Maximal relative error on a 200001-point logarithmic grid (peaks resolved to ~1e-6)."""
    grid = np.geomspace(lo, hi, 200001)
    return float(np.max(np.abs(fn(grid) / target_function(grid, power, shift, shift_power) - 1.0)))


def zolotarev_inverse_sqrt(lo: float, hi: float, n_poles: int) -> RationalApproximation:
    """Zolotarev's optimal relative approximation of ``x^{-1/2}`` on ``[lo, hi]``.

    On ``y = x / lo`` in ``[1, kappa]``, ``kappa = hi / lo``:
    ``y^{-1/2} ~ d prod_l (y + c_{2l}) / (y + c_{2l-1})`` with
    ``c_j = sn^2(j K / (2n+1); k) / cn^2(j K / (2n+1); k)``, ``k^2 = 1 - 1/kappa``,
    ``K = K(k^2)`` (Zolotarev 1877; see Chiu et al., hep-lat/0206007). The constant
    ``d`` centres the equioscillating error; the error is ``O(exp(-2 pi^2 n / ln(16 kappa)))``.
    """
    if not 0 < lo < hi:
        raise ValueError(f"zolotarev: range [{lo}, {hi}]; allowed: 0 < lo < hi")
    if n_poles < 1:
        raise ValueError(f"zolotarev: n_poles = {n_poles}; allowed: >= 1")
    from scipy import special  # on first use: scipy.special costs every job ~0.3 s to import

    kappa = hi / lo
    m = 1.0 - 1.0 / kappa
    big_k = special.ellipk(m)
    j = np.arange(1, 2 * n_poles + 1)
    sn, cn, _, _ = special.ellipj(j * big_k / (2 * n_poles + 1), m)
    c = sn**2 / cn**2
    num, den = c[1::2], c[0::2]  # c_{2l} (numerator), c_{2l-1} (denominator)
    grid = np.geomspace(1.0, kappa, 20001)
    prod = np.ones_like(grid)
    for a, b in zip(num, den):
        prod *= (grid + a) / (grid + b)
    g = np.sqrt(grid) * prod
    d = 2.0 / (g.max() + g.min())
    # partial fractions of prod (y + num) / (y + den) = 1 + sum_l beta_l / (y + den_l)
    beta = []
    for i, b in enumerate(den):
        top = np.prod(num - b)
        bottom = np.prod(np.delete(den, i) - b)
        beta.append(top / bottom)
    scale = d / np.sqrt(lo)
    residues = tuple(float(scale * bl * lo) for bl in beta)
    shifts = tuple(float(b * lo) for b in den)
    approx = RationalApproximation(scale, residues, shifts, -0.5, lo, hi, 0.0)
    err = _measure_error(approx, -0.5, lo, hi)
    return RationalApproximation(scale, residues, shifts, -0.5, lo, hi, err)
