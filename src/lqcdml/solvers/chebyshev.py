"""Chebyshev expansions of functions of hermitian operators."""

from __future__ import annotations

import numpy as np
import torch
from numpy.polynomial import chebyshev as cheb

__all__ = ["chebyshev_power"]


def chebyshev_power(
    apply, v: torch.Tensor, power: float, lo: float, hi: float, tol: float = 1e-13
) -> torch.Tensor:
    """``A^power v`` for hermitian ``A`` with spectrum in ``[lo, hi]``, by a Chebyshev series.

    The degree is chosen so that the series' tail is below ``tol`` relative to the
    smallest value of ``x^power`` on the interval.
    """
    def f(t):
        return ((hi - lo) / 2 * t + (hi + lo) / 2) ** power

    fmin = min(lo**power, hi**power)
    degree = 16
    while True:
        coeffs = cheb.chebinterpolate(f, degree)
        if np.max(np.abs(coeffs[-4:])) < tol * fmin or degree > 4096:
            break
        degree *= 2
    keep = np.nonzero(np.abs(coeffs) > tol * fmin * 1e-3)[0]
    coeffs = coeffs[: keep[-1] + 1]
    # Clenshaw recurrence on the scaled operator T = (2A - (hi + lo)) / (hi - lo)
    a, b = 2.0 / (hi - lo), -(hi + lo) / (hi - lo)

    def t_apply(x):
        return a * apply(x) + b * x

    b1 = torch.zeros_like(v)
    b2 = torch.zeros_like(v)
    for c in coeffs[:0:-1]:
        b1, b2 = 2 * t_apply(b1) - b2 + float(c) * v, b1
    return t_apply(b1) - b2 + float(coeffs[0]) * v
