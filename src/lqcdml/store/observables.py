"""Observable store: xarray Datasets in Zarr v3.

Dimensions ``config`` (the trajectory number of each stored configuration, matching
the ensemble's ``trajectory`` record), ``replica`` (1-based global chain number: job
replica ``r`` with ``B`` chains holds replicas ``(r - 1) B + 1 .. r B``) and the
observable's own (``t``, ``flow_time``, ``loop``, ...). Attributes name the ensemble
store, its config hash and the ensemble.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from ..atomic import atomic_path
from .ensemble import StoreError, settle_zarr_writes

__all__ = ["check_observables_target", "write_observables", "read_observables", "combine_replicas"]


def check_observables_target(path: str | os.PathLike) -> None:
    """``StoreError`` unless ``path`` is new or an observable store (which may be replaced);
    what ``write_observables`` checks, for a caller to check before the work."""
    path = Path(path)
    if path.exists() and not _is_observable_store(path):
        raise StoreError(
            f"--out = {str(path)!r} exists and is not an observable store; allowed: a new path "
            "or an observable store to replace (nothing was written)"
        )


def write_observables(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` to ``path`` (a ``.zarr`` folder); replaced whole, never half-written.

    The dataset is written beside the target and renamed into place, so a killed job
    leaves either the previous store or the new one.
    """
    path = Path(path)
    check_observables_target(path)
    # fixed-width numpy strings (labels such as the Wilson loops' "1x2") have no Zarr v3
    # specification; variable-length UTF-8 strings do
    ds = ds.assign_coords({k: ds[k].astype(object) for k in ds.coords if ds[k].dtype.kind == "U"})
    with atomic_path(path, suffix=".writing") as tmp:
        try:
            ds.to_zarr(str(tmp), mode="w", consolidated=False, zarr_format=3)
        except BaseException:
            settle_zarr_writes()  # before atomic_path removes the folder: nothing may write into it after
            raise


def _is_observable_store(path: Path) -> bool:
    """An existing Zarr group that is no ensemble store (an earlier observable store: it
    may be replaced); an ensemble store or any other folder or file may not."""
    try:
        data = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return data.get("node_type") == "group" and "lqcdml" not in data.get("attributes", {})


def read_observables(path: str | os.PathLike) -> xr.Dataset:
    """Open an observable store (loaded into memory)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"observable store {str(path)!r} does not exist or is not Zarr")
    with warnings.catch_warnings():
        # Snakemake marks directory outputs with a .snakemake_timestamp file inside
        warnings.filterwarnings("ignore", message=".*snakemake_timestamp.*")
        try:
            with xr.open_zarr(str(path), consolidated=False, zarr_format=3) as ds:
                return ds.load()
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(
                f"observable store {str(path)!r} cannot be read ({exc.__class__.__name__}: {exc})"
            ) from None


def combine_replicas(datasets: Sequence[xr.Dataset]) -> xr.Dataset:
    """Concatenate the replica jobs of one ensemble along ``replica`` (outer join on ``config``)."""
    if not datasets:
        raise ValueError("combine_replicas: no datasets")
    combined = xr.concat(list(datasets), dim="replica", join="outer", combine_attrs="drop_conflicts")
    return combined.sortby("replica")
