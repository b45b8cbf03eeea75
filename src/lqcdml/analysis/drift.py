"""Is the thermalisation cut long enough? A drift test of the kept chain, in two parts.

1. Geweke-type (a monotone approach to equilibrium): the mean of the first quarter of the
   kept chain (after the cut) is compared with the mean of its last half. Both errors come
   from the last half, the part in equilibrium under the hypothesis tested: its
   Gamma-method (autocorrelation-aware) error ``e`` over all replicas (with ``MIN_CHAINS`` or
   more chains, the larger of it and the error the spread of the chains' last-half means
   implies: the Gamma method's window misses a slow mode, and ran 1.5x low on 120
   configurations of the SLHMC paper's HMC row), scaled to the first quarter's length, so
   ``z = (mean_first - mean_last) / (e sqrt(1 + n_last / n_first))``.
   (An error estimated on the first quarter itself would grow with the drift it should
   detect.) In equilibrium ``z ~ N(0, 1)``; ``|z| > Z_MAX`` flags drift.
2. Stationarity over ``WINDOWS`` consecutive windows (a slow mode that the first test does
   not see: a chain that leaves and comes back, or moves in the middle of the kept chain):
   ``chi2 = sum_k (m_k - m)^2 / e_k^2`` of the window means ``m_k`` about their weighted mean,
   ``~ chi^2`` with ``WINDOWS - 1`` degrees of freedom in equilibrium; ``p < P_WINDOWS``
   flags drift. With ``MIN_CHAINS`` or more independent chains (replicas) the error of a
   window mean is the spread of the chains' own window means (``std / sqrt(R)``), which
   holds whatever the autocorrelation within the window: a mode slower than the window,
   which the Gamma method's windowed tau_int cannot see, is in it. With fewer chains it is
   the window's Gamma-method error.

For a flagged chain the test is repeated with the cut moved forward in steps of a tenth of
the kept chain, and the first cut that passes both parts (keeping at least half of it) is
the cut it would need; ``None`` if none does (the chain is too short to tell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy import stats

from .errors import estimate_dataarray
from .replicas import spread_of_means

__all__ = ["Drift", "drift_test", "Z_MAX", "MIN_PART", "WINDOWS", "P_WINDOWS", "MIN_CHAINS"]

Z_MAX = 3.0
#: fewest configurations per replica in the first quarter for the test to be made
MIN_PART = 8
#: windows of the stationarity test, and its threshold (about 3.3 sigma)
WINDOWS = 5
P_WINDOWS = 1e-3
#: chains (replicas) from which the spread of their window means is the window error
MIN_CHAINS = 8


@dataclass(frozen=True)
class Drift:
    """``z`` of the kept chain (first quarter against last half) and ``p`` of its window
    stationarity test (None where the chain is too short for it); ``needed_cut``:
    configurations to drop from the start of the kept chain for both to pass (0 when they
    pass; None when no cut does)."""

    z: float
    needed_cut: int | None
    p_windows: float | None = None

    @property
    def flagged(self) -> bool:
        return _fails(self.z, self.p_windows)


def _fails(z: float, p: float | None) -> bool:
    return not abs(z) <= Z_MAX or (p is not None and not p >= P_WINDOWS)


def _z(da: xr.DataArray, name: str) -> float | None:
    n = da.sizes["config"]
    n_first, n_last = n // 4, n // 2
    if n_first < MIN_PART:
        return None
    first = float(da.isel(config=slice(0, n_first)).mean())
    tail = da.isel(config=slice(n - n_last, n))
    last = estimate_dataarray(tail, name)
    spread = _chain_spread(tail)
    error = last.error if spread is None else max(last.error, spread[1])
    sigma = error * np.sqrt(1 + n_last / n_first)
    if not sigma > 0:
        return 0.0 if first == last.value else float("inf")
    return (first - last.value) / sigma


def _chain_spread(da: xr.DataArray) -> tuple[float, float] | None:
    """(mean, error of the mean) from the spread of the chains' means (``spread_of_means``);
    None with fewer than ``MIN_CHAINS`` chains."""
    found = spread_of_means(da)
    if found is None or found[2] < MIN_CHAINS:
        return None
    return found[0], found[1]


def _window_mean(da: xr.DataArray, name: str) -> tuple[float, float]:
    """(mean, error) of one window: the spread of the chains' means with ``MIN_CHAINS`` or
    more chains, else the Gamma-method error."""
    spread = _chain_spread(da)
    if spread is not None:
        return spread
    est = estimate_dataarray(da, name)
    return est.value, est.error


def _p_windows(da: xr.DataArray, name: str) -> float | None:
    """The stationarity test's p-value over ``WINDOWS`` windows (None if they are too short)."""
    n = da.sizes["config"]
    if n // WINDOWS < MIN_PART:
        return None
    edges = [k * n // WINDOWS for k in range(WINDOWS + 1)]
    means, errors = np.array([_window_mean(da.isel(config=slice(a, b)), name) for a, b in zip(edges[:-1], edges[1:])]).T
    scale = 1e-12 * max(1.0, float(np.max(np.abs(means))))
    if not np.all(errors > scale):  # windows that agree to rounding (a frozen or constant series)
        return 1.0 if np.ptp(means) <= scale else 0.0
    w = 1 / errors**2
    mean = (w * means).sum() / w.sum()
    chi2 = float((w * (means - mean) ** 2).sum())
    return float(stats.chi2.sf(chi2, WINDOWS - 1))


def drift_test(da: xr.DataArray, name: str = "ens") -> Drift | None:
    """The drift test of a ``(config, replica)`` series (already cut); None if too short."""
    da = da.dropna("config", how="all")
    z = _z(da, name)
    if z is None:
        return None
    p = _p_windows(da, name)
    if not _fails(z, p):
        return Drift(z, 0, p)
    n = da.sizes["config"]
    for step in range(1, 6):  # drop 10 %, 20 %, ... 50 % more
        cut = step * n // 10
        rest = da.isel(config=slice(cut, n))
        z_cut = _z(rest, name)
        if z_cut is not None and not _fails(z_cut, _p_windows(rest, name)):
            return Drift(z, cut, p)
    return Drift(z, None, p)
