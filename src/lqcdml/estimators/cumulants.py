"""Cumulants of the chiral condensate from stochastic traces.

Per configuration, ``n`` noise vectors give ``n`` unbiased estimates ``t_a`` of
``Sigma = Re tr D^-1 / V``. The product of ``k`` estimates from distinct noises is unbiased
for ``Sigma^k``; averaged over all ``k``-subsets it is ``e_k(t) / C(n, k)`` with ``e_k`` the
elementary symmetric polynomial (Newton's identities from the power sums). The ensemble
cumulants of ``Sigma`` scaled to be intensive in the infinite volume are

    kappa_1 = <S>,  kappa_2 = V <S^2>_c,  kappa_3 = V^2 <S^3>_c,  kappa_4 = V^3 <S^4>_c

with ``<S^k>_c`` the k-th cumulant built from the moments ``<S^j>`` (disconnected parts only:
the connected pieces of the mass derivatives of ln Z, tr D^-n, are targets of their own).
"""

from __future__ import annotations

from math import comb

import numpy as np

__all__ = ["distinct_noise_powers", "cumulants_from_moments"]


def distinct_noise_powers(t: np.ndarray, k_max: int = 4) -> dict[int, np.ndarray]:
    """``{k: e_k(t) / C(n, k)}`` for ``k = 1..min(k_max, n)``; ``t`` is ``[..., n]``."""
    t = np.asarray(t, dtype=float)
    n = t.shape[-1]
    p = [None] + [np.sum(t**j, axis=-1) for j in range(1, min(k_max, n) + 1)]
    e = [np.ones(t.shape[:-1])]
    for k in range(1, min(k_max, n) + 1):
        e.append(sum((-1) ** (i - 1) * e[k - i] * p[i] for i in range(1, k + 1)) / k)
    return {k: e[k] / comb(n, k) for k in range(1, min(k_max, n) + 1)}


def cumulants_from_moments(m: dict, volume: float) -> dict[int, object]:
    """``{k: kappa_k}`` from raw moments ``m[k] = <S^k>`` (numbers or ``pyerrors.Obs``)."""
    out = {1: m[1]}
    if 2 in m:
        out[2] = volume * (m[2] - m[1] * m[1])
    if 3 in m:
        out[3] = volume**2 * (m[3] - 3 * m[2] * m[1] + 2 * m[1] ** 3)
    if 4 in m:
        out[4] = volume**3 * (m[4] - 4 * m[3] * m[1] - 3 * m[2] * m[2] + 12 * m[2] * m[1] ** 2 - 6 * m[1] ** 4)
    return out
