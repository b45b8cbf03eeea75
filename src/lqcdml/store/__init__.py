"""Zarr ensemble and observable stores."""

from .ensemble import BLOCK, FORMAT, FORMAT_VERSION, RECORDS, EnsembleStore, StoreDamage, StoreError
from .gauge_layout import GaugeFileError
from .ildg import read_ildg, write_ildg
from .lock import lock_path, writer_lock
from .nersc import read_nersc, write_nersc
from .observables import combine_replicas, read_observables, write_observables
from .verify import verify_store

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
