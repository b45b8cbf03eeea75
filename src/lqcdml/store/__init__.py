"""Zarr ensemble and observable stores.

The names below are loaded on first use (PEP 562 ``__getattr__``), not when the package is
imported: every ``lqcdml`` job imports this package, and a job that writes an ensemble store
would otherwise pay for xarray and pandas (the observable store), torch's gauge-file layouts
and the ILDG/NERSC readers it never calls. ``from lqcdml.store import X`` works as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:  # the names for type checkers and the import graph (code digests, layer test)
    from .ensemble import BLOCK, FORMAT, FORMAT_VERSION, RECORDS, EnsembleStore, StoreDamage, StoreError
    from .gauge_layout import GaugeFileError
    from .ildg import read_ildg, write_ildg
    from .lock import lock_path, writer_lock
    from .nersc import read_nersc, write_nersc
    from .observables import combine_replicas, read_observables, write_observables
    from .verify import verify_store

#: each exported name and the submodule that defines it
_EXPORTS = {
    "BLOCK": "ensemble",
    "FORMAT": "ensemble",
    "FORMAT_VERSION": "ensemble",
    "RECORDS": "ensemble",
    "EnsembleStore": "ensemble",
    "StoreDamage": "ensemble",
    "StoreError": "ensemble",
    "GaugeFileError": "gauge_layout",
    "read_ildg": "ildg",
    "write_ildg": "ildg",
    "lock_path": "lock",
    "writer_lock": "lock",
    "read_nersc": "nersc",
    "write_nersc": "nersc",
    "combine_replicas": "observables",
    "read_observables": "observables",
    "write_observables": "observables",
    "verify_store": "verify",
}

__all__ = [
    "BLOCK",
    "FORMAT",
    "FORMAT_VERSION",
    "RECORDS",
    "EnsembleStore",
    "GaugeFileError",
    "StoreDamage",
    "StoreError",
    "combine_replicas",
    "lock_path",
    "writer_lock",
    "read_ildg",
    "read_nersc",
    "read_observables",
    "verify_store",
    "write_ildg",
    "write_nersc",
    "write_observables",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
