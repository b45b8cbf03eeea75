"""Minimax relative rational approximations of ``x^power`` by the Remez exchange algorithm.

For ``0 < |power| < 1`` the best type ``(n, n)`` approximation of ``x^power`` on
``[lo, hi]`` (``0 < lo``) has ``n`` real negative poles and zeros that interlace
(Stieltjes and complete Bernstein functions), so it is a partial-fraction sum
``c0 + sum_k a_k / (x + b_k)`` with ``b_k > 0``: one multi-shift CG applies it to an
operator. This is the RHMC construction of Clark and Kennedy (hep-lat/0608015).

The algorithm, on ``y = x / hi`` in ``[lo / hi, 1]``:

1. at ``2n + 2`` reference points solve ``P(y_i) = y_i^p (1 + (-1)^i E) Q(y_i)`` for the
   coefficients of ``P``, ``Q`` (``Q(0) = 1``) and the levelled error ``E`` (the ``E Q``
   term is linearised around the previous ``Q`` and iterated to a fixed point); the
   monomial system is ill-conditioned, so it is solved with mpmath at a working
   precision that grows with ``n log10(hi / lo)``;
2. move the references to the alternating extrema of ``e(y) = R(y) / y^p - 1``, located
   on a dense logarithmic grid in float64 (``P`` and ``Q`` have positive coefficients,
   so evaluating them at ``y > 0`` does not cancel) and refined by a parabola in ``log y``;
3. stop when the extrema are level to 1e-3 relative (or to the float64 evaluation noise).

The stated error is then measured on a 200001-point logarithmic grid (`_measure_error`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np

from .rational import RationalApproximation, _measure_error, zolotarev_inverse_sqrt

__all__ = ["RemezError", "rational_power", "rational_ratio", "remez_power"]


class RemezError(RuntimeError):
    """The exchange did not converge or gave poles off the negative real axis."""


class _BelowResolution(Exception):
    """References merged or the reference system degenerated: the error is at float64 noise."""


def _solve_reference(y, g, n, start, dps):
    """``p[0..n]``, ``q[0..n]`` (``q[0] = 1``) and ``E`` with ``P(y_i) = g_i (1 + s_i E) Q(y_i)``.

    Newton's method on the bilinear system, from ``start = (p, q, E)``.
    """
    with mpmath.workdps(dps):
        ys = [mpmath.mpf(v) for v in y]
        gs = [mpmath.mpf(v) for v in g]
        pw = [[yi**j for j in range(n + 1)] for yi in ys]
        signs = [1 if i % 2 == 0 else -1 for i in range(len(ys))]
        p, q, e = list(start[0]), list(start[1]), start[2]
        for _ in range(40):
            rows, res = [], []
            for i in range(len(ys)):
                pv = mpmath.fsum(c * t for c, t in zip(p, pw[i]))
                qv = mpmath.fsum(c * t for c, t in zip(q, pw[i]))
                fac = gs[i] * (1 + signs[i] * e)
                res.append(-(pv - fac * qv))
                rows.append(pw[i] + [-fac * t for t in pw[i][1:]] + [-gs[i] * signs[i] * qv])
            dz = _lu_solve(rows, res)
            p = [c + dz[j] for j, c in enumerate(p)]
            q = [q[0]] + [c + dz[n + j] for j, c in enumerate(q[1:], start=1)]
            e = e + dz[2 * n + 1]
            z = p + q[1:] + [e]
            if all(abs(dz[k]) <= 1e-20 * abs(z[k]) for k in range(2 * n + 2)):
                return p, q, e
        raise _BelowResolution


def _lu_solve(rows, rhs):
    """Gaussian elimination with partial pivoting on lists of mpf (mpmath's matrix class is slow)."""
    a = [list(r) + [b] for r, b in zip(rows, rhs)]
    m = len(a)
    for k in range(m):
        piv = max(range(k, m), key=lambda i: abs(a[i][k]))
        a[k], a[piv] = a[piv], a[k]
        pivot_row = a[k]
        inv = 1 / pivot_row[k]
        for i in range(k + 1, m):
            f = a[i][k] * inv
            if f:
                row = a[i]
                for j in range(k + 1, m + 1):
                    row[j] -= f * pivot_row[j]
    x = [0] * m
    for k in range(m - 1, -1, -1):
        x[k] = (a[k][m] - mpmath.fsum(a[k][j] * x[j] for j in range(k + 1, m))) / a[k][k]
    return x


def _interpolant(y, power, n, dps):
    """Rational interpolant ``P(y_i) = y_i^p Q(y_i)`` at ``2n + 1`` points (``E = 0``)."""
    with mpmath.workdps(dps):
        rows, rhs = [], []
        for yv in y:
            yi = mpmath.mpf(yv)
            gi = yi ** mpmath.mpf(power)
            powers = [yi**j for j in range(n + 1)]
            rows.append(powers + [-gi * t for t in powers[1:]])
            rhs.append(gi)
        sol = _lu_solve(rows, rhs)
        return [sol[j] for j in range(n + 1)], [mpmath.mpf(1)] + [sol[n + 1 + j] for j in range(n)], mpmath.mpf(0)


def _error_on(y, p, q, power):
    pf = np.array([float(c) for c in p])
    qf = np.array([float(c) for c in q])
    return np.polyval(pf[::-1], y) / np.polyval(qf[::-1], y) / y**power - 1.0


def _alternating_extrema(grid, err, n_points):
    """Abscissae of ``n_points`` alternating extrema of ``err`` on ``grid`` (or None)."""
    sign = err >= 0
    breaks = np.nonzero(sign[1:] != sign[:-1])[0] + 1
    runs = np.split(np.arange(grid.size), breaks)
    idx = [int(r[np.argmax(np.abs(err[r]))]) for r in runs]
    size = lambda k: abs(err[idx[k]])  # noqa: E731
    while len(idx) > n_points:
        k = min(range(len(idx)), key=size)
        if len(idx) == n_points + 1 or k in (0, len(idx) - 1):
            # one too many, or the smallest is an end: drop the smaller end
            idx.pop(0 if size(0) < size(len(idx) - 1) else -1)
            continue
        # a spurious sign change in the middle: drop it and merge its neighbours
        idx.pop(k)
        idx.pop(k if size(k) < size(k - 1) else k - 1)
    if len(idx) < n_points:
        return None
    out = []
    t = np.log(grid)
    for k in idx:
        if 0 < k < grid.size - 1:  # parabola through three neighbours in log y
            a, b, c = np.abs(err[k - 1 : k + 2])
            denom = a - 2 * b + c
            shift = min(0.5, max(-0.5, 0.5 * (a - c) / denom)) if denom < 0 else 0.0
            out.append(math.exp(t[k] + shift * (t[k + 1] - t[k])))
        else:
            out.append(grid[k])
    return np.array(out)


@lru_cache(maxsize=64)
def remez_power(power: float, lo: float, hi: float, n_poles: int, max_iter: int = 60) -> RationalApproximation:
    """Best relative type ``(n_poles, n_poles)`` approximation of ``x^power`` on ``[lo, hi]``.

    ``0 < |power| < 1``. Returns the partial-fraction form with its measured maximal
    relative error over ``[lo, hi]``.
    """
    if not 0 < abs(power) < 1:
        raise ValueError(f"remez: power = {power}; allowed: 0 < |power| < 1")
    if not 0 < lo < hi:
        raise ValueError(f"remez: range [{lo}, {hi}]; allowed: 0 < lo < hi")
    if n_poles < 1:
        raise ValueError(f"remez: n_poles = {n_poles}; allowed: >= 1")
    n = n_poles
    ymin = lo / hi
    dps = 40 + int(1.2 * n * math.log10(hi / lo))
    m = 2 * n + 2
    grid = np.geomspace(ymin, 1.0, 20001)
    # initial references: the alternation points of Zolotarev's x^(-1/2), which sit close
    # to those of every power (a Chebyshev-like start lets poles cross into the interval)
    zolo = zolotarev_inverse_sqrt(ymin, 1.0, n)
    ref = _alternating_extrema(grid, zolo.relative_error(grid), m)
    try:
        if ref is None:
            raise _BelowResolution
        state = _interpolant(ref[:-1], power, n, dps)
        return _exchange(power, lo, hi, n, ref, state, grid, dps, max_iter)
    except (_BelowResolution, ZeroDivisionError):
        raise RemezError(
            f"remez: {n} poles for x^{power} on [{lo}, {hi}] push the error below what float64 "
            "can resolve (about 1e-14); use fewer poles or a larger tolerance"
        ) from None


def _exchange(power, lo, hi, n, ref, state, grid, dps, max_iter):
    """Remez exchange loop from reference points ``ref`` and a starting solution."""
    m = 2 * n + 2
    for _ in range(max_iter):
        p, q, _ = state = _solve_reference(ref, ref**power, n, state, dps)
        full = np.union1d(grid, ref)
        err = _error_on(full, p, q, power)
        new_ref = _alternating_extrema(full, err, m)
        if new_ref is None:
            raise _BelowResolution
        ext = np.abs(_error_on(new_ref, p, q, power))
        ref = new_ref
        # level to 1e-3, or to the float64 noise of evaluating P / Q (about 1e-15)
        if ext.max() - ext.min() <= 1e-3 * ext.max() + 4e-15:
            break
    else:
        raise RemezError(f"remez: no convergence in {max_iter} exchanges (power {power}, n {n})")
    return _partial_fractions(p, q, power, lo, hi, dps)


def _partial_fractions(p, q, power, lo, hi, dps) -> RationalApproximation:
    """``R(y) = P/Q`` in ``y = x / hi`` to ``c0 + sum a_k / (x + b_k)`` in ``x``."""
    n = len(q) - 1
    with mpmath.workdps(2 * dps):
        roots = mpmath.polyroots(q[::-1], maxsteps=400, extraprec=4 * dps)
        b = []
        for r in roots:
            if abs(mpmath.im(r)) > mpmath.mpf(10) ** (-dps // 2) or mpmath.re(r) >= 0:
                raise RemezError(f"remez: pole {complex(r)} off the negative real axis")
            b.append(-mpmath.re(r))
        dq = [j * q[j] for j in range(1, n + 1)]
        a = [mpmath.polyval(p[::-1], -bk) / mpmath.polyval(dq[::-1], -bk) for bk in b]
        c0 = p[n] / q[n]
        scale = mpmath.mpf(hi) ** power
        c0x = float(scale * c0)
        residues = tuple(float(scale * ak * hi) for ak in a)
        shifts = tuple(float(bk * hi) for bk in b)
    approx = RationalApproximation(c0x, residues, shifts, power, lo, hi, 0.0)
    return RationalApproximation(c0x, residues, shifts, power, lo, hi, _measure_error(approx, power, lo, hi))


@lru_cache(maxsize=64)
def rational_power(power: float, lo: float, hi: float, tol: float = 1e-12) -> RationalApproximation:
    """The approximation of ``x^power`` on ``[lo, hi]`` with the fewest poles and error ``<= tol``.

    ``power = -1/2`` uses Zolotarev's closed form; other powers the Remez algorithm.
    """
    if not 1e-14 <= tol < 1:
        raise ValueError(f"rational approximation: tol = {tol}; allowed: 1e-14 <= tol < 1")
    build = (
        (lambda n: zolotarev_inverse_sqrt(lo, hi, n)) if power == -0.5 else (lambda n: remez_power(power, lo, hi, n))
    )
    # Zolotarev's error exp(-2 pi^2 n / ln(16 kappa)) sets the first guess for every power
    rate = 2 * math.pi**2 / math.log(16 * hi / lo)
    n = max(1, int(math.log(1 / tol) / rate))
    approx = build(n)
    while approx.max_relative_error > tol:
        n += 1
        approx = build(n)
        if n > 64:
            raise RemezError(f"rational approximation: tol {tol} not reached with 64 poles")
    while n > 1:
        fewer = build(n - 1)
        if fewer.max_relative_error > tol:
            break
        n, approx = n - 1, fewer
    return approx


@lru_cache(maxsize=64)
def rational_ratio(exponent: float, shift: float, lo: float, hi: float, tol: float = 1e-12) -> RationalApproximation:
    """The approximation of ``((x + shift) / x)^exponent`` on ``[lo, hi]`` with the fewest poles
    and relative error ``<= tol``: the Hasenbusch ratio ``det(M + shift)^a / det(M)^a`` of a
    rooted fermion (``exponent = a``: its action; ``-a / 2``: its heat bath).

    With ``t = x / (x + shift)`` the function is ``t^(-exponent)`` on
    ``[lo / (lo + shift), hi / (hi + shift)]``; the Moebius map takes its best relative
    approximation (``rational_power``; exact for ``exponent = 1``) to the best one in ``x``
    of the same degree and the same error, ``a / (t + b) = a / (1 + b)
    + a shift / (1 + b)^2 / (x + b shift / (1 + b))``. Its range is ``(lo + shift) / lo``
    wide instead of ``hi / lo``, so it needs few poles.
    """
    if not 0 < abs(exponent) <= 1:
        raise ValueError(f"rational ratio: exponent = {exponent}; allowed: 0 < |exponent| <= 1")
    if not shift > 0:
        raise ValueError(f"rational ratio: shift = {shift}; allowed: > 0")
    if not 0 < lo < hi:
        raise ValueError(f"rational ratio: range [{lo}, {hi}]; allowed: 0 < lo < hi")
    residues: tuple[float, ...]
    shifts: tuple[float, ...]
    if exponent == 1:  # (x + s) / x = 1 + s / x exactly
        c0, residues, shifts = 1.0, (float(shift),), (0.0,)
    else:
        r = rational_power(-exponent, lo / (lo + shift), hi / (hi + shift), tol)
        c0 = r.c0 + math.fsum(a / (1 + b) for a, b in zip(r.residues, r.shifts))
        residues = tuple(a * shift / (1 + b) ** 2 for a, b in zip(r.residues, r.shifts))
        shifts = tuple(b * shift / (1 + b) for b in r.shifts)
    approx = RationalApproximation(c0, residues, shifts, -exponent, lo, hi, 0.0, shift, exponent)
    err = _measure_error(approx, -exponent, lo, hi, shift, exponent)
    return RationalApproximation(c0, residues, shifts, -exponent, lo, hi, err, shift, exponent)
