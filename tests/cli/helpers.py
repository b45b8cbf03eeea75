"""Helpers for command-line tests."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from lqcdml.store import EnsembleStore

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def env_with_bin() -> dict:
    """The environment with this interpreter's scripts (``lqcdml``, ``snakemake``) on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> content hash of every file below ``root``."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def store_digest(path: Path) -> dict:
    """Everything a chain consists of: fields, records and checkpoint, as arrays."""
    store = EnsembleStore.open(path)
    out = {"n": store.n_committed}
    out["fields"] = np.stack([store.read_fields(i) for i in range(store.n_committed)])
    for name in store.record_names:
        out[name] = store.read_records(name)
    ckpt = store.checkpoint()
    out.update({f"ckpt_{k}": v for k, v in ckpt["arrays"].items()})
    out["ckpt_trajectory"] = np.array(ckpt["attrs"]["trajectory"])
    return out


def assert_same_chain(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
