"""ILDG gauge files: LIME records ``ildg-format``, ``ildg-binary-data``, ``scidac-checksum``.

After the ILDG file-format note (ILDG Metadata Working Group, "ILDG file format", 2006)
and the SciDAC/QIO checksum (USQCD QIO, ``DML_checksum``):

- ``ildg-format``: XML ``<ildgFormat><version>1.0</version><field>su3gauge</field>
  <precision>64|32</precision><lx/><ly/><lz/><lt/></ildgFormat>``;
- ``ildg-binary-data``: big-endian IEEE numbers, sites ``t, z, y, x`` (``x`` fastest),
  at each site the links ``mu = x, y, z, t``, each ``N x N`` complex row by row;
- ``scidac-checksum``: XML ``<scidacChecksum><version>1.0</version><suma>..</suma>
  <sumb>..</sumb></scidacChecksum>``: with ``c_r`` the CRC-32 of the bytes of site
  ``r`` (lexicographic rank, ``x`` fastest), ``suma`` is the XOR over sites of ``c_r``
  rotated left by ``r mod 29`` bits, ``sumb`` the same with ``r mod 31``.

SU(2) (``<field>su2gauge</field>``, 2 x 2 matrices) is this project's extension.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .gauge_layout import (
    GaugeFileError,
    check_memory,
    check_sites,
    checked_links,
    decode_links,
    encode_links,
)
from .lime import EAGER_BYTES, LimeEntry, LimeRecord, read_lime, write_lime

__all__ = ["Geometry", "read_ildg", "write_ildg", "scidac_checksum"]

_FIELDS = {"su3gauge": 3, "su2gauge": 2}
#: most bytes of a metadata record (ildg-format, scidac-checksum) that are read
MAX_METADATA = EAGER_BYTES


def _rotl(values: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    v = values.astype(np.uint64)
    s = shifts.astype(np.uint64)
    return (((v << s) | (v >> ((32 - s) % 32))) & 0xFFFFFFFF).astype(np.uint32)


def scidac_checksum(site_bytes: np.ndarray) -> tuple[int, int]:
    """``(suma, sumb)`` of ``site_bytes`` ``[n_sites, bytes_per_site]`` (uint8, file order)."""
    crcs = np.fromiter((zlib.crc32(row.tobytes()) for row in site_bytes), dtype=np.uint32, count=site_bytes.shape[0])
    rank = np.arange(site_bytes.shape[0], dtype=np.uint64)
    suma = np.bitwise_xor.reduce(_rotl(crcs, rank % 29)) if len(crcs) else 0
    sumb = np.bitwise_xor.reduce(_rotl(crcs, rank % 31)) if len(crcs) else 0
    return int(suma), int(sumb)


def _tag(xml: str, name: str, path: Path) -> str:
    m = re.search(rf"<{name}>\s*([^<]*?)\s*</{name}>", xml)
    if m is None:
        raise GaugeFileError(f"{path}: ildg-format has no <{name}>")
    return m.group(1)


@dataclass(frozen=True)
class Geometry:
    """What an ``ildg-format`` record says, given by the user for files without one:
    ``lattice`` ``[T, X, Y, Z]`` (time first, as ``theory.lattice``), colours, precision."""

    lattice: tuple[int, int, int, int]
    n_colors: int = 3
    precision: int = 64


def _metadata(records: dict[str, LimeEntry], name: str, path: Path, errors: str = "strict") -> str:
    """The UTF-8 text of the metadata record ``name`` (at most ``MAX_METADATA`` bytes)."""
    try:
        return records[name].read(MAX_METADATA).decode("utf-8", errors=errors)
    except UnicodeDecodeError:
        raise GaugeFileError(f"{path}: {name} is not UTF-8 XML") from None


def _format_record(records: dict[str, LimeEntry], path: Path) -> tuple[str, int, tuple[int, int, int, int]]:
    """``(field, precision, (lx, ly, lz, lt))`` of the ``ildg-format`` record."""
    xml = _metadata(records, "ildg-format", path)
    field = _tag(xml, "field", path)
    if field not in _FIELDS:
        raise GaugeFileError(f"{path}: field = {field!r}; allowed: {', '.join(_FIELDS)}")
    try:
        precision = int(_tag(xml, "precision", path))
        lx, ly, lz, lt = (int(_tag(xml, k, path)) for k in ("lx", "ly", "lz", "lt"))
    except ValueError:
        raise GaugeFileError(f"{path}: ildg-format precision and lx..lt must be integers") from None
    return field, precision, (lx, ly, lz, lt)


def _geometry(
    records: dict[str, LimeEntry], geometry: Geometry | None, path: Path
) -> tuple[str, int, tuple[int, int, int, int]]:
    """``(field, precision, (lx, ly, lz, lt))`` from the ``ildg-format`` record, which a given
    ``geometry`` must agree with, or from ``geometry`` for a file without one."""
    if "ildg-format" in records:
        field, precision, (lx, ly, lz, lt) = _format_record(records, path)
        if geometry is not None:
            given = (
                {2: "su2gauge", 3: "su3gauge"}.get(geometry.n_colors),
                geometry.precision,
                (geometry.lattice[1], geometry.lattice[2], geometry.lattice[3], geometry.lattice[0]),
            )
            if given != (field, precision, (lx, ly, lz, lt)):
                raise GaugeFileError(
                    f"{path}: ildg-format says {field}, precision {precision}, "
                    f"lx..lt {[lx, ly, lz, lt]}; the given geometry disagrees"
                )
        return field, precision, (lx, ly, lz, lt)
    if geometry is None:
        raise GaugeFileError(
            f"{path}: no ildg-format record; allowed: give the geometry "
            "(--lattice T,X,Y,Z --colors N --precision 64|32)"
        )
    if geometry.n_colors not in (2, 3) or geometry.precision not in (32, 64) or len(geometry.lattice) != 4:
        raise GaugeFileError(f"{path}: geometry {geometry}; allowed: 4 extents, 2 or 3 colours, precision 32 or 64")
    lt, lx, ly, lz = (int(v) for v in geometry.lattice)
    return {2: "su2gauge", 3: "su3gauge"}[geometry.n_colors], geometry.precision, (lx, ly, lz, lt)


def _stored_checksum(records: dict[str, LimeEntry], path: Path) -> tuple[int, int]:
    """``(suma, sumb)`` of the ``scidac-checksum`` record."""
    text = _metadata(records, "scidac-checksum", path, errors="replace")
    try:
        return int(_tag(text, "suma", path), 16), int(_tag(text, "sumb", path), 16)
    except ValueError:
        raise GaugeFileError(f"{path}: scidac-checksum suma/sumb are not hexadecimal") from None


def read_ildg(
    path: str | os.PathLike, geometry: Geometry | None = None, check_checksum: bool = True, reproject: bool = False
) -> tuple[np.ndarray, dict]:
    """``(links [4, T, X, Y, Z, N, N] complex128, info)``; the SciDAC checksum is verified.

    A file with only an ``ildg-binary-data`` record (some codes write such files) needs
    ``geometry``, checked against the record's size; with an ``ildg-format`` record a given
    geometry must agree with it. A file without a ``scidac-checksum`` record is read only
    with ``check_checksum = False`` (``info["checksum"] = "not checked"``). ``reproject``:
    links off SU(N) by more than the tolerance are projected onto it (deviation in info).
    Sizes are checked from the LIME headers before any data are read: the binary data must
    have the geometry's size and its links fit in memory (``gauge_layout.check_memory``).
    """
    path = Path(path)
    records = {r.type: r for r in reversed(read_lime(path))}  # the first record of each type
    if "ildg-binary-data" not in records:
        raise GaugeFileError(f"{path}: no ildg-binary-data record (not an ILDG gauge file)")
    field, precision, (lx, ly, lz, lt) = _geometry(records, geometry, path)
    if precision not in (32, 64):
        raise GaugeFileError(f"{path}: precision = {precision}; allowed: 32, 64")
    n_sites = check_sites({"lx": lx, "ly": ly, "lz": lz, "lt": lt}, path)
    n = _FIELDS[field]
    dtype = np.dtype(">f8" if precision == 64 else ">f4")
    site_values = 4 * n * n * 2
    expected = n_sites * site_values * dtype.itemsize
    binary = records["ildg-binary-data"]
    if binary.length != expected:
        raise GaugeFileError(
            f"{path}: ildg-binary-data has {binary.length} bytes; {field} {lx}x{ly}x{lz}x{lt} "
            f"at precision {precision} needs {expected}"
        )
    if check_checksum and "scidac-checksum" not in records:
        raise GaugeFileError(
            f"{path}: no scidac-checksum record, so its data cannot be checked; allowed: "
            "--no-checksum to import it unchecked"
        )
    stored = _stored_checksum(records, path) if check_checksum else None
    check_memory(path, expected, n_sites, n)
    data = binary.read()
    info = {
        "field": field,
        "precision": precision,
        "lattice": [lx, ly, lz, lt],
        "checksum": "not checked",
        "format_record": "ildg-format" in records,
    }
    if stored is not None:
        computed = scidac_checksum(np.frombuffer(data, dtype=np.uint8).reshape(-1, site_values * dtype.itemsize))
        if stored != computed:
            raise GaugeFileError(
                f"{path}: SciDAC checksum mismatch: record suma {stored[0]:08x} sumb {stored[1]:08x}, "
                f"data suma {computed[0]:08x} sumb {computed[1]:08x}"
            )
        info["checksum"] = "verified"
    with np.errstate(all="ignore"):
        raw = decode_links(np.frombuffer(data, dtype=dtype), (lt, lz, ly, lx), n, n)
        links, deviation = checked_links(raw, path, reproject=reproject)
    info["group_deviation"] = deviation
    return links, info


def write_ildg(path: str | os.PathLike, links: np.ndarray, precision: int = 64, lfn: str | None = None) -> dict:
    """Write ``links [4, T, X, Y, Z, N, N]`` with format, data and SciDAC checksum records."""
    links = np.asarray(links)
    n = links.shape[-1]
    if links.ndim != 7 or links.shape[0] != 4 or n not in (2, 3) or links.shape[-2] != n:
        raise GaugeFileError(f"write_ildg: links of shape {links.shape}; allowed: [4, T, X, Y, Z, N, N], N = 2 or 3")
    if precision not in (32, 64):
        raise GaugeFileError(f"write_ildg: precision = {precision}; allowed: 32, 64")
    field = {3: "su3gauge", 2: "su2gauge"}[n]
    t, x, y, z = links.shape[1:5]
    data = encode_links(links, n, ">f8" if precision == 64 else ">f4").tobytes()
    site_bytes = np.frombuffer(data, dtype=np.uint8).reshape(t * z * y * x, -1)
    suma, sumb = scidac_checksum(site_bytes)
    fmt = (
        f'<?xml version="1.0" encoding="UTF-8"?><ildgFormat><version>1.0</version><field>{field}</field>'
        f"<precision>{precision}</precision><lx>{x}</lx><ly>{y}</ly><lz>{z}</lz><lt>{t}</lt></ildgFormat>"
    )
    checksum = (
        f'<?xml version="1.0" encoding="UTF-8"?><scidacChecksum><version>1.0</version>'
        f"<suma>{suma:08x}</suma><sumb>{sumb:08x}</sumb></scidacChecksum>"
    )
    records = [
        LimeRecord("ildg-format", fmt.encode(), True, False),
        LimeRecord("ildg-binary-data", data, False, lfn is None),
        LimeRecord("scidac-checksum", checksum.encode(), False, lfn is None),
    ]
    if lfn is not None:
        records.append(LimeRecord("ildg-data-lfn", lfn.encode(), False, True))
    write_lime(path, records)
    return {"field": field, "precision": precision, "suma": f"{suma:08x}", "sumb": f"{sumb:08x}"}
