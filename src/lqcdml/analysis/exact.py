"""Exact and expansion results that tests and summaries compare against.

Formulas are those of docs/reference.md#exact-results (conventions of docs/conventions.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import special

__all__ = [
    "u1_2d_plaquette",
    "u1_2d_plaquette_susceptibility",
    "u1_2d_topological_susceptibility",
    "free_scalar_propagator",
    "free_scalar_zero_momentum_correlator",
    "strong_coupling_plaquette",
    "single_plaquette_average",
]


def _bessel_sum_range(beta: float) -> np.ndarray:
    n_max = int(30 + 4 * beta)
    return np.arange(-n_max, n_max + 1)


def u1_2d_plaquette(beta: float, n_plaquettes: int) -> float:
    """Exact ``<cos theta_P>`` of 2D U(1) on a periodic torus with ``n_plaquettes = L0 L1``.

    ``<P> = sum_n I_n^{N_P - 1} I_n' / sum_n I_n^{N_P}``, ``I_n' = (I_{n-1} + I_{n+1}) / 2``.
    Exponentially scaled Bessel functions keep the sums finite.
    """
    n = _bessel_sum_range(beta)
    i_n = special.ive(n, beta)
    d_n = 0.5 * (special.ive(n - 1, beta) + special.ive(n + 1, beta))
    log_w = n_plaquettes * np.log(i_n)
    w = np.exp(log_w - log_w.max())
    return float(np.sum(w * d_n / i_n) / np.sum(w))


def u1_2d_plaquette_susceptibility(beta: float, n_plaquettes: int) -> float:
    """Exact ``N_P (<p^2> - <p>^2)`` of the mean plaquette ``p = sum_P cos theta_P / N_P`` of 2D U(1)
    on a periodic torus: ``(1/N_P) d^2 ln Z / d beta^2`` with ``Z = sum_n I_n^{N_P}``,
    ``I_n' = (I_{n-1} + I_{n+1}) / 2`` and ``I_n'' = (I_{n-2} + 2 I_n + I_{n+2}) / 4``."""
    n = _bessel_sum_range(beta)
    i_n = special.ive(n, beta)
    d_n = 0.5 * (special.ive(n - 1, beta) + special.ive(n + 1, beta)) / i_n
    e_n = 0.25 * (special.ive(n - 2, beta) + 2 * i_n + special.ive(n + 2, beta)) / i_n
    log_w = n_plaquettes * np.log(i_n)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    first = n_plaquettes * np.sum(w * d_n)
    second = np.sum(w * (n_plaquettes * (n_plaquettes - 1) * d_n**2 + n_plaquettes * e_n))
    return float((second - first**2) / n_plaquettes)


def u1_2d_log_z(beta: float, n_plaquettes: int) -> float:
    """``ln Z`` of ``S = beta sum_P (1 - cos theta_P)`` on the torus, Haar measure of unit volume
    per link: ``Z = sum_n [e^{-beta} I_n(beta)]^{N_P}``."""
    n = _bessel_sum_range(beta)
    return float(np.logaddexp.reduce(n_plaquettes * np.log(special.ive(n, beta))))


def u1_2d_topological_susceptibility(beta: float, n_plaquettes: int) -> float:
    """Exact ``chi_t = <Q^2> / N_P`` of the geometric charge of 2D U(1) on a torus.

    ``chi_t = -F''(0) / (4 pi^2 N_P F(0))`` with ``F(nu) = sum_n f(n + nu)^{N_P}`` and
    ``f(nu) = (1/2pi) int e^{beta cos phi} cos(nu phi) dphi``; ``f`` and its
    derivatives by Gauss-Legendre quadrature (scaled by ``e^{-beta}``).
    """

    # the integrands are entire functions of phi: Gauss-Legendre converges exponentially
    nodes, weights = np.polynomial.legendre.leggauss(256)
    phi, w = np.pi * nodes, np.pi * weights
    damp = np.exp(beta * (np.cos(phi) - 1.0))

    def moments(nu: float) -> tuple[float, float, float]:
        c, s = np.cos(nu * phi), np.sin(nu * phi)
        f0 = np.sum(w * damp * c)
        f1 = -np.sum(w * damp * phi * s)
        f2 = -np.sum(w * damp * phi * phi * c)
        return f0 / (2 * np.pi), f1 / (2 * np.pi), f2 / (2 * np.pi)

    n_p = n_plaquettes
    terms = [moments(float(n)) for n in range(-12, 13)]
    f = np.array([t[0] for t in terms])
    f1 = np.array([t[1] for t in terms])
    f2 = np.array([t[2] for t in terms])
    scale = np.max(np.abs(f))
    f, f1, f2 = f / scale, f1 / scale, f2 / scale
    big_f = np.sum(f**n_p)
    big_f2 = np.sum(n_p * (n_p - 1) * f ** (n_p - 2) * f1**2 + n_p * f ** (n_p - 1) * f2)
    return float(-big_f2 / (4 * np.pi**2 * n_p * big_f))


def free_scalar_propagator(shape: Sequence[int], m2: float, convention: str = "flow") -> np.ndarray:
    """Exact ``G(x) = <phi_0 phi_x>`` of the free field (``lambda = 0``, ``m^2 > 0``).

    ``flow`` convention: ``G = (1/2V) sum_k e^{ikx} / (m^2 + sum_mu 4 sin^2(k_mu/2))``;
    ``standard`` (1/2-normalised): without the factor 1/2. Array of shape ``shape``.
    """
    if m2 <= 0:
        raise ValueError(f"free_scalar_propagator: m2 = {m2}; allowed: m2 > 0")
    ks = np.meshgrid(*[2 * np.pi * np.fft.fftfreq(int(L)) for L in shape], indexing="ij")
    denom = m2 + sum(4 * np.sin(k / 2) ** 2 for k in ks)
    g = np.fft.ifftn(1.0 / denom).real
    return g / 2 if convention == "flow" else g


def free_scalar_zero_momentum_correlator(shape: Sequence[int], m2: float, convention: str = "flow") -> np.ndarray:
    """``C(t) = sum_{x-vec} G(t, x-vec)`` along axis 0."""
    g = free_scalar_propagator(shape, m2, convention)
    return g.reshape(g.shape[0], -1).sum(axis=1)


def single_plaquette_average(beta: float, n: int) -> tuple[float, float]:
    """``u(beta) = d ln z_N / d beta`` and ``u'(beta)`` for SU(N) (``n >= 2``).

    ``z_N(beta) = sum_k det[I_{k+i-j}(beta/N)]_{i,j=1..N}`` (SU(2): ``u = I_2/I_1``).
    Derivatives by central differences of the analytic ``ln z``.
    """

    def log_z(b: float) -> float:
        if n == 2:
            return float(np.log(2 * special.ive(1, b) / b) + b)
        ks = np.arange(-40, 41)
        idx = np.arange(n)
        total = 0.0
        for k in ks:
            mat = special.ive(k + idx[:, None] - idx[None, :], b / n)
            total += np.linalg.det(mat)
        return float(np.log(total) + b)  # det of scaled Bessels carries e^{-b/N} per row

    h = 1e-4 * max(1.0, beta)
    lm, lp = log_z(beta - h), log_z(beta + h)
    u = (lp - lm) / (2 * h)
    h2 = 1e-3 * max(1.0, beta)
    um = (log_z(beta) - log_z(beta - 2 * h2)) / (2 * h2)
    up = (log_z(beta + 2 * h2) - log_z(beta)) / (2 * h2)
    return u, (up - um) / (2 * h2)


def strong_coupling_plaquette(beta: float, n: int) -> float:
    """4D Wilson action, SU(2)/SU(3): ``<P> = u + 4 m d_F^2 u^5 u'`` (closed-surface correction).

    ``(m, d_F) = (1, 2)`` for SU(2), ``(2, 3)`` for SU(3); valid at small ``beta``.
    """
    coeff = {2: (1, 2), 3: (2, 3)}
    if n not in coeff:
        raise ValueError(f"strong_coupling_plaquette: N = {n}; allowed: 2, 3")
    m, d_f = coeff[n]
    u, du = single_plaquette_average(beta, n)
    return u + 4 * m * d_f**2 * u**5 * du
