"""Zarr ensemble and observable stores."""

from .ensemble import BLOCK, FORMAT, FORMAT_VERSION, RECORDS, EnsembleStore, StoreError
from .observables import combine_replicas, read_observables, write_observables

__all__ = [
    "BLOCK",
    "FORMAT",
    "FORMAT_VERSION",
    "RECORDS",
    "EnsembleStore",
    "StoreError",
    "combine_replicas",
    "read_observables",
    "write_observables",
]
