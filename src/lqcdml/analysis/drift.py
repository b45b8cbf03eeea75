"""Is the thermalisation cut long enough? A drift test of the kept chain.

A Geweke-type test: the mean of the first quarter of the kept chain (after the cut) is
compared with the mean of its last half. Both errors come from the last half, the part
in equilibrium under the hypothesis tested: its Gamma-method (autocorrelation-aware) error
``e`` over all replicas, scaled to the first quarter's length, so
``z = (mean_first - mean_last) / (e sqrt(1 + n_last / n_first))``. (An error estimated on
the first quarter itself would grow with the drift it should detect.) A chain in
equilibrium gives ``z ~ N(0, 1)``; ``|z| > Z_MAX`` flags drift. For a flagged
chain the test is repeated with the cut moved forward in steps of a tenth of the kept
chain, and the first cut that passes (keeping at least half of it) is the cut it would
need; ``None`` if none does (the chain is too short to tell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .errors import estimate_dataarray

__all__ = ["Drift", "drift_test", "Z_MAX", "MIN_PART"]

Z_MAX = 3.0
#: fewest configurations per replica in the first quarter for the test to be made
MIN_PART = 8


@dataclass(frozen=True)
class Drift:
    """``z`` of the kept chain; ``needed_cut``: configurations to drop from the start of
    the kept chain for the test to pass (0 when it passes; None when no cut does)."""

    z: float
    needed_cut: int | None

    @property
    def flagged(self) -> bool:
        return abs(self.z) > Z_MAX


def _z(da: xr.DataArray, name: str) -> float | None:
    n = da.sizes["config"]
    n_first, n_last = n // 4, n // 2
    if n_first < MIN_PART:
        return None
    first = float(da.isel(config=slice(0, n_first)).mean())
    last = estimate_dataarray(da.isel(config=slice(n - n_last, n)), name)
    sigma = last.error * np.sqrt(1 + n_last / n_first)
    if not sigma > 0:
        return 0.0 if first == last.value else float("inf")
    return (first - last.value) / sigma


def drift_test(da: xr.DataArray, name: str = "ens") -> Drift | None:
    """The drift test of a ``(config, replica)`` series (already cut); None if too short."""
    da = da.dropna("config", how="all")
    z = _z(da, name)
    if z is None:
        return None
    if abs(z) <= Z_MAX:
        return Drift(z, 0)
    n = da.sizes["config"]
    for step in range(1, 6):  # drop 10 %, 20 %, ... 50 % more
        cut = step * n // 10
        z_cut = _z(da.isel(config=slice(cut, n)), name)
        if z_cut is not None and abs(z_cut) <= Z_MAX:
            return Drift(z, cut)
    return Drift(z, None)
