"""Autocorrelation-aware errors through pyerrors (Gamma method)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyerrors as pe

__all__ = [
    "Estimate",
    "to_obs",
    "estimate",
    "derived_estimate",
    "dataarray_to_obs",
    "estimate_dataarray",
    "derived_dataarray_estimate",
    "blocked_estimate",
    "BLOCKS",
]

#: blocks per chain of ``blocked_estimate``
BLOCKS = 10


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate: value, error and integrated autocorrelation time."""

    value: float
    error: float
    tau_int: float

    def pull(self, exact: float) -> float:
        """``(value - exact) / error``."""
        return (self.value - exact) / self.error

    def __str__(self) -> str:
        return f"{self.value:.6g} +- {self.error:.2g} (tau_int {self.tau_int:.2f})"


def to_obs(samples: np.ndarray | Sequence, name: str = "ens") -> pe.Obs:
    """``pyerrors.Obs`` from ``[n_config, n_chain]`` samples, one replica per chain.

    Replicas are named ``name|r01``, ``name|r02``, ...; a 1D array is one replica.
    """
    arr = np.asarray(samples, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"to_obs: samples of shape {arr.shape}; allowed: [n_config >= 2, n_chain]")
    names = [f"{name}|r{r + 1:02d}" for r in range(arr.shape[1])]
    return pe.Obs([arr[:, r] for r in range(arr.shape[1])], names)


def _finish(obs: pe.Obs, name: str, s_tau: float) -> Estimate:
    obs.gamma_method(S=s_tau)
    tau = float(obs.e_tauint.get(name, 0.5)) if hasattr(obs, "e_tauint") else 0.5
    return Estimate(float(obs.value), float(obs.dvalue), tau)


def estimate(samples: np.ndarray | Sequence, name: str = "ens", s_tau: float = 2.0) -> Estimate:
    """Mean of ``[n_config, n_chain]`` samples with its Gamma-method error and tau_int."""
    return _finish(to_obs(samples, name), name, s_tau)


def derived_estimate(
    fn: Callable[..., object],
    samples: Sequence[np.ndarray],
    name: str = "ens",
    s_tau: float = 2.0,
) -> Estimate:
    """``fn`` of the means of several observables, errors propagated by pyerrors.

    ``fn`` receives one ``pyerrors.Obs`` per entry of ``samples`` and must use
    operations pyerrors can differentiate (arithmetic, ``np.log``, ...).
    """
    obs = [to_obs(s, name) for s in samples]
    return _finish(fn(*obs), name, s_tau)


def dataarray_to_obs(da, ensemble: str) -> pe.Obs:
    """``pyerrors.Obs`` from an xarray DataArray with dims ``(config, replica)``.

    Replica ``r`` becomes ``ensemble|r<rr>`` with ``idl`` the configuration indices
    (trajectory numbers) where it has a value: gapped and unequal chains are allowed.
    """
    if tuple(da.dims) != ("config", "replica"):
        raise ValueError(f"dataarray_to_obs: dims {tuple(da.dims)}; allowed: ('config', 'replica')")
    samples, names, idls = [], [], []
    configs = np.asarray(da["config"].values, dtype=np.int64)
    for r in da["replica"].values:
        column = np.asarray(da.sel(replica=r).values, dtype=float)
        keep = np.isfinite(column)
        if keep.sum() < 5:  # pyerrors' minimum per replica
            continue
        samples.append(column[keep])
        names.append(f"{ensemble}|r{int(r):02d}")
        idls.append([int(c) for c in configs[keep]])
    if not samples:
        raise ValueError(f"dataarray_to_obs: {da.name!r} has no replica with 5 or more values")
    return pe.Obs(samples, names, idl=idls)


def estimate_dataarray(da, ensemble: str, s_tau: float = 2.0) -> Estimate:
    """``estimate`` of a ``(config, replica)`` DataArray, autocorrelation-aware per replica."""
    return _finish(dataarray_to_obs(da, ensemble), ensemble, s_tau)


def derived_dataarray_estimate(
    fn: Callable[..., object], das: Sequence[Any], ensemble: str, s_tau: float = 2.0
) -> Estimate:
    """``derived_estimate`` of ``(config, replica)`` DataArrays (``dataarray_to_obs`` each)."""
    return _finish(fn(*(dataarray_to_obs(da, ensemble) for da in das)), ensemble, s_tau)


def blocked_estimate(da, blocks: int = BLOCKS) -> Estimate:
    """Mean of a ``(config, replica)`` DataArray with the error of its block means: each chain cut
    into ``blocks`` consecutive blocks, the error ``std(block means) / sqrt(n_blocks)`` over the
    blocks of all chains (weighted by their lengths). For a heavy-tailed quantity such as
    ``exp(-delta_H)``, whose rare large values dominate its variance, the block means are
    closer to normal than the values and their spread is the honest error; blocks longer
    than the autocorrelation also take it in. ``tau_int``: the variance of the block means
    over the variance of the values, times the block length, over 2 (0.5 without
    autocorrelation)."""
    values = np.asarray(da.transpose("config", "replica").values, dtype=float)
    block_means: list[float] = []
    block_sizes: list[int] = []
    for column in values.T:
        column = column[np.isfinite(column)]
        if len(column) < blocks:
            continue
        for part in np.array_split(column, blocks):
            block_means.append(part.mean())
            block_sizes.append(len(part))
    if len(block_means) < 2:
        raise ValueError(f"blocked_estimate: {da.name!r} has no chain with {blocks} or more values")
    means, sizes = np.array(block_means), np.array(block_sizes, dtype=float)
    mean = float((sizes * means).sum() / sizes.sum())
    var_blocks = float((sizes * (means - mean) ** 2).sum() / sizes.sum()) * len(means) / (len(means) - 1)
    error = float(np.sqrt(var_blocks / len(means)))
    flat = values[np.isfinite(values)]
    var_values = float(flat.var())
    tau = 0.5 * var_blocks * sizes.mean() / var_values if var_values > 0 else 0.5
    return Estimate(mean, error, tau)
