"""2D SU(N) Wilson gauge theory on a periodic torus, exactly, by the character expansion
(docs/reference.md#su-n-2d-exact), at finite volume.

With ``S = -(beta/N) sum_P Re tr U_P`` and ``exp((beta/N) Re tr U) = sum_l d_l f_l chi_l(U)`` over
the irreducible representations ``l`` (Young diagrams ``l_1 >= ... >= l_{N-1} >= 0``):

- ``c_l = d_l f_l = sum_k det[I_{l_j - j + i + k}(beta/N)]_{i,j=1..N}`` (``l_N = 0``),
  ``d_l = prod_{i<j} (l_i - l_j + j - i) / (j - i)``;
- the torus of ``V`` plaquettes (genus 1): ``Z = sum_l f_l^V``;
- ``<Re tr U_P> / N = (1/V) d ln Z / d beta``, the plaquette susceptibility
  ``V (<p^2> - <p>^2) = (1/V) d^2 ln Z / d beta^2`` of the mean plaquette ``p``;
- a contractible Wilson loop in the fundamental enclosing ``A`` plaquettes (a disk glued to the
  torus with a hole): ``<tr W> = (1/Z) sum_{m, l} (d_m / d_l) f_m^A f_l^(V - A) N(m x F -> l)``,
  with ``N`` the Pieri rule (one box added to a row of ``m``; a full column of ``N`` boxes removed).

The sum over representations stops at ``l_1 <= cutoff``; the terms fall like ``(f_l / f_0)^A``.
Derivatives in ``beta``: Richardson-extrapolated central differences of ``ln Z`` (~1e-10).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
from scipy import special

__all__ = [
    "su_n_representations",
    "su_n_character_coefficients",
    "su_n_2d_plaquette",
    "su_n_2d_plaquette_susceptibility",
    "su_n_2d_wilson_loop",
]

K_RANGE = np.arange(-40, 41)


@cache
def su_n_representations(n: int, cutoff: int) -> tuple[tuple[int, ...], ...]:
    """Young diagrams ``(l_1, ..., l_{N-1})`` with ``cutoff >= l_1 >= ... >= l_{N-1} >= 0``."""
    reps = [
        rows
        for rows in itertools.product(range(cutoff + 1), repeat=n - 1)
        if all(rows[i] >= rows[i + 1] for i in range(n - 2))
    ]
    return tuple(reps)


def _dimension(rows: tuple[int, ...]) -> float:
    full = (*rows, 0)
    n = len(full)
    return float(np.prod([(full[i] - full[j] + j - i) / (j - i) for i in range(n) for j in range(i + 1, n)]))


def su_n_character_coefficients(beta: float, n: int, cutoff: int) -> dict[tuple[int, ...], float]:
    """``ln f_l`` of every representation up to ``cutoff`` (``f_l = c_l / d_l``)."""
    out = {}
    idx = np.arange(n)
    for rows in su_n_representations(n, cutoff):
        full = np.array([*rows, 0])
        # [k, i, j]: I_{l_j - j + i + k}(beta / N), exponentially scaled (each row carries e^{-beta/N})
        orders = full[None, None, :] - idx[None, None, :] + idx[None, :, None] + K_RANGE[:, None, None]
        total = np.linalg.det(special.ive(orders, beta / n)).sum()
        out[rows] = float(np.log(total) + beta - np.log(_dimension(rows)))
    return out


def _log_z(beta: float, n: int, volume: int, cutoff: int) -> float:
    log_f = np.array(list(su_n_character_coefficients(beta, n, cutoff).values()))
    return float(np.logaddexp.reduce(volume * log_f))


def _derivatives(beta: float, n: int, volume: int, cutoff: int) -> tuple[float, float]:
    """First and second ``beta``-derivatives of ``ln Z``: central differences at steps ``h`` and
    ``h / 2`` combined by Richardson extrapolation (error O(h^4))."""
    h = 1e-2 * max(1.0, beta)
    lz = [_log_z(beta + k * h / 2, n, volume, cutoff) for k in (-2, -1, 0, 1, 2)]
    d1_h, d1_half = (lz[4] - lz[0]) / (2 * h), (lz[3] - lz[1]) / h
    d2_h, d2_half = (lz[4] - 2 * lz[2] + lz[0]) / h**2, (lz[3] - 2 * lz[2] + lz[1]) / (h / 2) ** 2
    return (4 * d1_half - d1_h) / 3, (4 * d2_half - d2_h) / 3


def su_n_2d_log_z(beta: float, n: int, volume: int, cutoff: int = 16) -> float:
    """``ln Z`` of ``S = beta sum_P (1 - Re tr U_P / N)`` on a torus of ``volume`` plaquettes, Haar
    measure of unit volume per link: ``ln sum_r f_r^V - beta V``."""
    return _log_z(beta, n, volume, cutoff) - beta * volume


def su_n_2d_plaquette(beta: float, n: int, volume: int, cutoff: int = 16) -> float:
    """``<Re tr U_P> / N`` on a torus of ``volume`` plaquettes."""
    return _derivatives(beta, n, volume, cutoff)[0] / volume


def su_n_2d_plaquette_susceptibility(beta: float, n: int, volume: int, cutoff: int = 16) -> float:
    """``V (<p^2> - <p>^2)`` of the mean plaquette ``p = sum_P Re tr U_P / (N V)``."""
    return _derivatives(beta, n, volume, cutoff)[1] / volume


def _pieri(rows: tuple[int, ...], n: int) -> list[tuple[int, ...]]:
    """The representations in ``rows x fundamental`` (each once)."""
    full = [*rows, 0]
    out = []
    for i in range(n):
        if i == 0 or full[i] < full[i - 1]:
            grown = full.copy()
            grown[i] += 1
            out.append(tuple(x - grown[-1] for x in grown[:-1]))  # a full column removed
    return out


def su_n_2d_wilson_loop(beta: float, n: int, volume: int, area: int, cutoff: int = 16) -> float:
    """``<Re tr W> / N`` of a contractible fundamental loop around ``area`` plaquettes."""
    log_f = su_n_character_coefficients(beta, n, cutoff)
    log_z = np.logaddexp.reduce(volume * np.array(list(log_f.values())))
    terms = []
    for m, log_fm in log_f.items():
        for rep in _pieri(m, n):
            if rep in log_f:
                ratio = np.log(_dimension(m) / _dimension(rep))
                terms.append(ratio + area * log_fm + (volume - area) * log_f[rep])
    return float(np.exp(np.logaddexp.reduce(terms) - log_z)) / n
