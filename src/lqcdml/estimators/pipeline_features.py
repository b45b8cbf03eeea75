"""The arrays of the bias-corrected estimate, from its observable stores: features, targets,
the entries' places in Monte Carlo time and the measurements' cost.

Every array is flat replica-major: all configurations of global replica 1, then of 2, ...
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .cumulants import distinct_noise_powers
from .ensemble import EnsembleIndex
from .pipeline_inputs import EstimateInputError

__all__ = ["feature", "layout", "targets", "cost_per_entry"]


def feature(ds_list: list[xr.Dataset], name: str) -> np.ndarray:
    """Variable ``name`` (or ``name:coord`` of its one extra axis) flattened replica-major."""
    base, _, coord = name.partition(":")
    parts = []
    for ds in ds_list:
        if base not in ds:
            available = ", ".join(sorted(str(v) for v in ds.data_vars))
            raise EstimateInputError(
                f"estimator feature {name!r}: no variable {base!r} in the observable store; allowed: {available}"
            )
        da = ds[base]
        extra = [d for d in da.dims if d not in ("config", "replica")]
        if coord:
            if len(extra) != 1:
                raise EstimateInputError(
                    f"estimator feature {name!r}: {base!r} has axes {extra}; 'name:coord' needs one"
                )
            values = [str(v) for v in da[extra[0]].values]
            if coord not in values:
                raise EstimateInputError(
                    f"estimator feature {name!r}: {extra[0]} = {coord!r}; allowed: {', '.join(values)}"
                )
            da = da.isel({extra[0]: values.index(coord)})
        elif extra:
            raise EstimateInputError(
                f"estimator feature {name!r}: {base!r} has axes {extra}; name one element as '{base}:<{extra[0]}>'"
            )
        parts.append(np.asarray(da.transpose("replica", "config").values, dtype=float))
    return np.concatenate(parts, axis=0).reshape(-1)


def layout(ds_list: list[xr.Dataset], ensemble: str) -> EnsembleIndex:
    """(global replica, configuration) of every entry of the stores."""
    replica, config = [], []
    for ds in ds_list:
        cfgs = np.asarray(ds["config"].values, dtype=np.int64)
        for r in np.asarray(ds["replica"].values, dtype=np.int64):
            replica.append(np.full(len(cfgs), r))
            config.append(cfgs)
    return EnsembleIndex(ensemble, np.concatenate(replica), np.concatenate(config))


def targets(expensive: list[xr.Dataset]) -> dict[str, np.ndarray]:
    """Per-entry targets: ``tr1..tr4`` (``Re tr D^-n / V`` averaged over noise) and
    ``tr1_pow2..`` (``(Re tr D^-1 / V)^k`` unbiased from distinct noises)."""
    parts = [
        np.asarray(ds["trace_inverse_noise_re"].transpose("replica", "config", "noise", "power").values)
        for ds in expensive
    ]
    t = np.concatenate(parts, axis=0)  # [replica, config, noise, power]
    t = t.reshape(-1, *t.shape[2:])
    out = {f"tr{n}": t[:, :, n - 1].mean(axis=1) for n in range(1, 5)}
    for k, v in distinct_noise_powers(t[:, :, 0], 4).items():
        if k > 1:
            out[f"tr1_pow{k}"] = v
    return out


def cost_per_entry(ds_list: list[xr.Dataset]) -> float:
    """Seconds per measured (configuration, chain) entry of a set of observable stores."""
    seconds = sum(float(ds.attrs.get("measure_seconds", 0.0)) for ds in ds_list)
    entries = sum(int(ds.attrs.get("measured_entries", 0)) for ds in ds_list)
    return seconds / entries if entries else float("nan")
