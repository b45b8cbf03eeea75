"""``lqcdml import`` and ``lqcdml export``: gauge files to and from ensemble stores
(``driver.interop``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import new_path, path

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="gauge files (NERSC, ILDG) into a new ensemble store")
    p.add_argument("files", type=path, nargs="+", help="gauge files, in chain order")
    p.add_argument("--store", type=new_path, required=True, help="ensemble store (.zarr) to create")
    p.add_argument("--format", default="auto", help="auto (from the file), nersc or ildg")
    p.add_argument("--lattice", help="T,X,Y,Z for ILDG files without an ildg-format record")
    p.add_argument("--colors", type=int, default=3, help="with --lattice: 2 or 3")
    p.add_argument("--precision", type=int, default=64, help="with --lattice: 64 or 32")
    p.add_argument(
        "--no-checksum",
        action="store_true",
        help="import files whose checksum is a placeholder or absent (recorded in the store)",
    )
    p.add_argument(
        "--reproject",
        action="store_true",
        help="import links off SU(N) by more than 1e-5 projected onto it (deviation recorded)",
    )
    p.set_defaults(run=run_import)

    p = sub.add_parser("export", help="an ensemble store's configurations as gauge files")
    p.add_argument("store", type=path)
    p.add_argument("--out", type=path, required=True, help="folder for the files")
    p.add_argument("--format", required=True, help="nersc or ildg")
    p.add_argument("--precision", default="double", help="double or single")
    p.add_argument("--two-rows", action="store_true", help="NERSC: store N - 1 rows (4D_SU3_GAUGE)")
    p.set_defaults(run=run_export)


def run_import(args: argparse.Namespace) -> int:
    from ..driver.interop import ImportOptions, import_files, parse_geometry

    options = ImportOptions(
        parse_geometry(args.lattice, args.colors, args.precision), not args.no_checksum, args.reproject
    )
    summary = import_files([Path(f) for f in args.files], Path(args.store), args.format, options)
    print(json.dumps({k: v for k, v in summary.items() if k != "sources"}))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..driver.interop import export_store

    summary = export_store(Path(args.store), Path(args.out), args.format, args.precision, args.two_rows)
    print(json.dumps({**summary, "files": len(summary["files"])}))
    return 0
