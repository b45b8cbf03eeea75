"""``lqcdml info STORE``: what an ensemble store holds, as JSON."""

from __future__ import annotations

from pathlib import Path

from ..store import EnsembleStore

__all__ = ["info"]


def info(store_path: Path) -> dict:
    """What ``lqcdml info STORE`` prints."""
    store = EnsembleStore.open(store_path)
    meta = store.meta
    return {
        "store": str(store_path),
        "format": meta.get("format"),
        "format_version": meta.get("format_version"),
        "n_committed": store.n_committed,
        "capacity": store.capacity,
        "complete": store.n_committed >= store.capacity,
        "experiment": meta.get("experiment"),
        "ensemble": meta.get("ensemble"),
        "replica": meta.get("replica"),
        "config_hash": meta.get("config_hash"),
        "config": meta.get("config"),
        "precision": meta.get("precision"),
        "versions": {"lqcdml": meta.get("version"), "git_commit": meta.get("git_commit")},
        "field_shape": list(store.field_shape),
        "dtype": str(store.dtype),
    }
