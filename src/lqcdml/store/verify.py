"""Check a whole ensemble store: every committed configuration, the records, the checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .ensemble import EnsembleStore, StoreDamage, StoreError

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


def _expected_shape(meta: dict) -> list[int] | None:
    """``[B, ...]`` of the fields from the stored config (None if it does not say)."""
    config = meta.get("config", {})
    theory, chain = config.get("theory", {}), config.get("chain", {})
    lattice, n_chains = theory.get("lattice"), chain.get("n_chains")
    if not isinstance(lattice, list) or not isinstance(n_chains, int):
        return None
    if theory.get("name") == "phi4":
        return [n_chains, *lattice]
    if theory.get("name") == "u1":
        return [n_chains, len(lattice), *lattice]
    n = theory.get("n_colors", 3)
    return [n_chains, len(lattice), *lattice, n, n]


def verify_store(path: str | os.PathLike) -> dict:
    """``{"store", "n_committed", "ok", "bad": [{"index", "error"}], "records", "checkpoint",
    "structure"}``.

    Reads every committed configuration through its checksum (a damaged or missing
    chunk is reported with its index and the check goes on), checks the values
    (finite; SU(N) links unitary), the per-configuration records, the checkpoint, and the
    structure resume and measurement rely on (shapes against the stored config, arrays of
    one capacity, every chunk present, the checkpoint consistent with the records). A
    store whose bookkeeping cannot even be opened is reported the same way.
    """
    try:
        store = EnsembleStore.open(Path(path))
    except StoreDamage as exc:
        return {"store": str(path), "n_committed": None, "ok": False, "bad": [], "records": {},
                "checkpoint": "not checked", "structure": [str(exc)]}
    theory = store.meta.get("theory", {})
    structure = store.structural_problems()
    expected = _expected_shape(store.meta)
    if expected is not None and list(store.field_shape) != expected:
        structure.insert(0, f"store {str(path)!r}: fields of shape {list(store.field_shape)}, the stored config "
                            f"gives {expected}")
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
    ok = not bad and all(v == "ok" for v in records.values()) and checkpoint == "ok" and not structure
    return {"store": str(path), "n_committed": store.n_committed, "ok": ok, "bad": bad,
            "records": records, "checkpoint": checkpoint, "structure": structure}
