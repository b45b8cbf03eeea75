"""Do the replicas agree? The scatter of the replica means against the Gamma-method error.

The Gamma method (pyerrors) estimates the error of a multi-replica mean from the fluctuations
*within* each replica about its own mean: the spread *between* replica means never enters.
For chains in equilibrium the two agree, but a chain that rejects every proposal (a constant
series), or chains trapped in different sectors (frozen topology), give a within-chain error
far below the true one. This test makes the spread between replicas visible.

With ``e`` the Gamma-method error of the mean over all ``N`` configurations, a replica of
``n_r`` configurations has a mean of variance ``e^2 N / n_r`` in equilibrium, so

    chi2 = sum_r n_r (m_r - m)^2 / (N e^2)  ~  chi^2 with R - 1 degrees of freedom,

and ``e_between = sqrt(sum_r n_r (m_r - m)^2 / ((R - 1) N))`` is the error of the mean that the
spread of the replica means alone implies (``chi2 = (R - 1) e_between^2 / e^2``). The test flags
``p < P_MIN``. The threshold is far out because the Gamma method itself runs somewhat low on
short chains (its windowed tau_int), which inflates ``chi2`` by a modest factor; a flag means the
replicas disagree far beyond that, not a fluctuation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import stats

from .errors import estimate_dataarray

__all__ = ["ReplicaSpread", "replica_test", "spread_of_means", "P_MIN", "MIN_PER_REPLICA"]

P_MIN = 1e-6
#: replicas with fewer values are left out, as pyerrors leaves them out of the estimate
MIN_PER_REPLICA = 5


@dataclass(frozen=True)
class ReplicaSpread:
    """``chi2`` of the replica means with ``dof = R - 1``; ``p`` its upper tail;
    ``error_between``: the error of the mean implied by the spread of the replica means."""

    chi2: float
    dof: int
    p: float
    error_between: float

    @property
    def flagged(self) -> bool:
        return self.p < P_MIN


def spread_of_means(da: xr.DataArray, min_count: int = 1) -> tuple[float, float, int] | None:
    """``(mean, error_between, R)`` of a ``(config, replica)`` series over its ``R`` replicas
    with ``min_count`` or more values: the length-weighted mean of the replica means and the
    error of it that their spread alone implies; None with fewer than two such replicas."""
    values = np.asarray(da.transpose("config", "replica").values, dtype=float)
    counts = np.isfinite(values).sum(axis=0)
    keep = counts >= max(1, min_count)
    if keep.sum() < 2:
        return None
    means, counts = np.nanmean(values[:, keep], axis=0), counts[keep]
    total = counts.sum()
    mean = float((counts * means).sum() / total)
    n = int(keep.sum())
    return mean, float(np.sqrt((counts * (means - mean) ** 2).sum() / ((n - 1) * total))), n


def replica_test(da: xr.DataArray, name: str = "ens", error: float | None = None) -> ReplicaSpread | None:
    """The replica test of a ``(config, replica)`` series (already cut); None with fewer than
    two replicas of ``MIN_PER_REPLICA`` values. ``error``: the series' Gamma-method error
    where the caller has it (computed here otherwise)."""
    found = spread_of_means(da, MIN_PER_REPLICA)
    if found is None:
        return None
    mean, error_between, n = found
    dof = n - 1
    if error is None:
        error = estimate_dataarray(da, name).error
    noise = 1e-12 * max(1.0, abs(mean))  # replica means that agree to rounding
    if error_between <= noise:
        return ReplicaSpread(0.0, dof, 1.0, error_between)
    if not error > noise:  # a Gamma-method error of rounding size: the chains never moved
        return ReplicaSpread(float("inf"), dof, 0.0, error_between)
    chi2 = dof * error_between**2 / error**2
    return ReplicaSpread(chi2, dof, float(stats.chi2.sf(chi2, dof)), error_between)
