"""``lqcdml info STORE`` (what an ensemble store holds, as JSON) and ``lqcdml verify STORE``
(whether every configuration is intact; exit 4 if damaged)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import path

__all__ = ["info", "add_verify_parser", "add_info_parser"]


def add_verify_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check every configuration of a store (exit 4 if damaged)")
    p.add_argument("store", type=path)
    p.add_argument(
        "--quick",
        action="store_true",
        help="read only the last configurations (records, checkpoint and metadata are checked whole)",
    )
    p.set_defaults(run=run_verify)


def add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="JSON description of an ensemble store")
    p.add_argument("store", type=path)
    p.set_defaults(run=run_info)


def info(store_path: Path) -> dict:
    from ..store import EnsembleStore

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


def run_info(args: argparse.Namespace) -> int:
    print(json.dumps(info(Path(args.store)), indent=2))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from ..identity.expectations import store_expectations
    from ..store import EnsembleStore, StoreDamage, verify_store
    from ..store.verify import QUICK_TAIL

    store = Path(args.store)
    try:
        expectations = store_expectations(EnsembleStore.open(store).meta)
    except StoreDamage:
        expectations = None  # verify_store reports what cannot be opened
    report = verify_store(store, expectations, tail=QUICK_TAIL if args.quick else None)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 4
