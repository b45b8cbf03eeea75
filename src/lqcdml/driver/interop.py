"""Gauge files (NERSC, ILDG) to and from ensemble stores (``lqcdml import`` and ``export``).

An import reads and checks every file (checksum, group deviation; ``ImportOptions`` for
files of other programs) into a new one-chain store built beside its destination and
renamed into place, so a failure leaves nothing behind; an export writes one file per
committed configuration and chain of a 4D SU(N) store."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from .. import __version__
from ..provenance import git_commit
from ..store import (
    EnsembleStore,
    GaugeFileError,
    StoreError,
    read_ildg,
    read_nersc,
    write_ildg,
    write_nersc,
    writer_lock,
)
from ..store.ensemble import remove_failed_build
from ..store.gauge_layout import mean_plaquette, within
from ..store.ildg import Geometry

__all__ = ["import_files", "export_store", "detect_format", "ImportOptions", "parse_geometry"]

FORMATS = ("nersc", "ildg")


def detect_format(path: Path) -> str:
    """``nersc`` (ASCII header) or ``ildg`` (LIME magic number) from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"BEGIN_HEADER"):
        return "nersc"
    if head[:4] == bytes.fromhex("456789ab"):
        return "ildg"
    raise GaugeFileError(f"{path}: neither a NERSC file (BEGIN_HEADER) nor a LIME/ILDG file (magic 456789ab)")


def _read(path: Path, fmt: str, options: ImportOptions) -> tuple[np.ndarray, dict]:
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "nersc":
        links, header = read_nersc(path, check_checksum=options.check_checksum, reproject=options.reproject)
        return links, {
            "file": str(path),
            "format": "nersc",
            "checksum": header.get("CHECKSUM"),
            "checksum_checked": header["lqcdml_checksum"] == "verified",
            "plaquette": header.get("PLAQUETTE"),
            "group_deviation": float(header["lqcdml_group_deviation"]),
            "reprojected": options.reproject and not within(float(header["lqcdml_group_deviation"]), 1e-5),
        }
    links, info = read_ildg(path, options.geometry, options.check_checksum, options.reproject)
    return links, {
        "file": str(path),
        "format": "ildg",
        "checksum": info["checksum"],
        "checksum_checked": info["checksum"] == "verified",
        "format_record": info["format_record"],
        "group_deviation": info["group_deviation"],
        "reprojected": options.reproject and not within(info["group_deviation"], 1e-5),
    }


@dataclass(frozen=True)
class ImportOptions:
    """How to read files that other programs wrote: ``geometry`` for ILDG files without an
    ``ildg-format`` record, ``check_checksum = False`` for placeholder or absent checksums
    (recorded in the store), ``reproject`` for links off the group (deviation recorded)."""

    geometry: Geometry | None = None
    check_checksum: bool = True
    reproject: bool = False


def parse_geometry(lattice: str | None, colors: int, precision: int) -> Geometry | None:
    """``--lattice T,X,Y,Z --colors N --precision P`` (None without ``--lattice``)."""
    if lattice is None:
        return None
    try:
        extents = tuple(int(v) for v in lattice.split(","))
    except ValueError:
        extents = ()
    if len(extents) != 4 or min(extents) < 1:
        raise StoreError(f"--lattice = {lattice!r}; allowed: four positive extents T,X,Y,Z")
    if colors not in (2, 3):
        raise StoreError(f"--colors = {colors}; allowed: 2 or 3")
    if precision not in (32, 64):
        raise StoreError(f"--precision = {precision}; allowed: 64 or 32")
    return Geometry(extents, colors, precision)


def import_files(files: list[Path], store_path: Path, fmt: str = "auto", options: ImportOptions | None = None) -> dict:
    """A new ensemble store (one chain) holding ``files`` in order; every file fully checked.

    The store is built beside its destination and renamed into place at the end, so a
    failure leaves nothing behind.
    """
    if fmt not in ("auto", *FORMATS):
        raise StoreError(f"--format = {fmt!r}; allowed: auto, {', '.join(FORMATS)}")
    if not files:
        raise StoreError("no files to import")
    with writer_lock(store_path):
        return _import_locked(files, store_path, fmt, options or ImportOptions())


def _import_locked(files: list[Path], store_path: Path, fmt: str, options: ImportOptions) -> dict:
    if store_path.exists():
        raise StoreError(f"store {str(store_path)!r} exists already; allowed: a new store path")
    for f in files:
        if not f.is_file():
            raise StoreError(f"{str(f)!r} is not a file")
    first, info = _read(files[0], fmt, options)
    n = first.shape[-1]
    lattice = list(first.shape[1:5])
    tmp = store_path.with_name(store_path.name + ".importing")
    if tmp.exists():
        shutil.rmtree(tmp)
    meta = {
        "experiment": "imported",
        "ensemble": store_path.stem,
        "replica": 1,
        "config": {"theory": {"name": "su", "n_colors": n, "lattice": lattice}},
        "config_hash": "imported",
        "precision": "float64",
        "chain_state": False,
        "theory": {"name": "su", "n_colors": n, "lattice": lattice},
        "version": __version__,
        "git_commit": git_commit(),
    }
    store = EnsembleStore.create(
        tmp, field_shape=(1, *first.shape), dtype="complex128", capacity=len(files), meta=meta, observable="plaquette"
    )
    sources = []
    try:
        for i, path in enumerate(files):
            links, info = (first, info) if i == 0 else _read(path, fmt, options)
            if links.shape != first.shape:
                raise GaugeFileError(
                    f"{path}: lattice {list(links.shape[1:5])} x SU({links.shape[-1]}); "
                    f"the first file has {lattice} x SU({n})"
                )
            records = {
                "trajectory": i,
                "accepted": np.ones(1),
                "delta_H": np.zeros(1),
                "plaquette": np.array([mean_plaquette(links)]),
            }
            store.commit(i, links[None], records, {}, {"trajectory": i})
            sources.append(info)
    except Exception:
        remove_failed_build(tmp)
        raise
    store._group.attrs["lqcdml"] = {
        **cast(dict, store._group.attrs["lqcdml"]),  # the store's own attributes: a mapping
        "sources": sources,
        "checksums_checked": all(s["checksum_checked"] for s in sources),
        "reprojected": any(s["reprojected"] for s in sources),
    }
    tmp.rename(store_path)
    return {"store": str(store_path), "n_committed": len(files), "lattice": lattice, "n_colors": n, "sources": sources}


def export_store(store_path: Path, out_dir: Path, fmt: str, precision: str = "double", two_rows: bool = False) -> dict:
    """One gauge file per committed configuration and chain of a 4D SU(N) store."""
    if fmt not in FORMATS:
        raise StoreError(f"--format = {fmt!r}; allowed: {', '.join(FORMATS)}")
    if precision not in ("double", "single"):
        raise StoreError(f"--precision = {precision!r}; allowed: double, single")
    store = EnsembleStore.open(store_path)
    theory = store.meta.get("theory", {})
    if theory.get("name") != "su" or len(theory.get("lattice", [])) != 4:
        raise StoreError(
            f"store {str(store_path)!r} holds {theory.get('name')} in {len(theory.get('lattice', []))}D; "
            "allowed: 4D SU(2) or SU(3) links"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{store.meta.get('ensemble', store_path.stem)}_r{int(store.meta.get('replica', 1)):02d}"
    written = []
    for i in range(store.n_committed):
        fields = store.read_fields(i)
        for b, links in enumerate(fields):
            if fmt == "nersc":
                path = out_dir / f"{stem}_n{i:05d}_c{b:02d}.nersc"
                write_nersc(path, links, precision, two_rows, ensemble_id=stem, sequence_number=i)
            else:
                path = out_dir / f"{stem}_n{i:05d}_c{b:02d}.lime"
                write_ildg(path, links, 64 if precision == "double" else 32)
            written.append(str(path))
    return {"store": str(store_path), "format": fmt, "precision": precision, "files": written}
