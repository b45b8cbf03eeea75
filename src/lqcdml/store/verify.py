"""Check a whole ensemble store: every committed configuration, the records, the checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .ensemble import EnsembleStore, StoreError

__all__ = ["verify_store"]


def _group_check(fields: np.ndarray, theory: dict) -> str | None:
    """A problem with the values of one configuration ``[B, ...]`` (None if fine)."""
    if not np.all(np.isfinite(fields)):
        return "non-finite values"
    if theory.get("name") == "su":
        n = fields.shape[-1]
        drift = float(np.max(np.abs(np.conj(np.swapaxes(fields, -1, -2)) @ fields - np.eye(n))))
        tol = 1e-10 if fields.dtype == np.complex128 else 1e-4
        if drift > tol:
            return f"links off SU({n}): max |U^dag U - 1| = {drift:.3g}"
    return None


def verify_store(path: str | os.PathLike) -> dict:
    """``{"store", "n_committed", "ok", "bad": [{"index", "error"}], "records", "checkpoint"}``.

    Reads every committed configuration through its checksum (a damaged or missing
    chunk is reported with its index and the check goes on), checks the values
    (finite; SU(N) links unitary), the per-configuration records and the checkpoint.
    """
    store = EnsembleStore.open(Path(path))
    theory = store.meta.get("theory", {})
    bad = []
    for i in range(store.n_committed):
        try:
            problem = _group_check(store.read_fields(i), theory)
        except StoreError as exc:
            problem = str(exc)
        if problem is not None:
            bad.append({"index": i, "error": problem})
    records = {}
    for name in store.record_names:
        try:
            store.read_records(name)
            records[name] = "ok"
        except StoreError as exc:
            records[name] = str(exc)
    try:
        store.checkpoint()
        checkpoint = "ok"
    except Exception as exc:  # noqa: BLE001 - a damaged checkpoint in any way
        checkpoint = f"damaged: {exc}"
    ok = not bad and all(v == "ok" for v in records.values()) and checkpoint == "ok"
    return {"store": str(path), "n_committed": store.n_committed, "ok": ok, "bad": bad,
            "records": records, "checkpoint": checkpoint}
