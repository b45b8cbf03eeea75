"""NERSC gauge files: ASCII header, binary links, checksum and plaquette checks.

Layout (the NERSC "Archive" format, as described with the header keys by the NERSC/
Gauge Connection archive and used by MILC, Grid and Chroma):

- ``BEGIN_HEADER`` ... ``END_HEADER`` lines ``KEY = value``; the binary data follow the
  newline after ``END_HEADER``;
- data: sites in the order ``t, z, y, x`` (``x`` fastest), at each site the links in the
  directions ``x, y, z, t``, each an ``N x N`` complex matrix row by row (real, imag),
  or only its first ``N - 1`` rows (``DATATYPE = 4D_SU3_GAUGE``; the last row is
  rebuilt from unitarity);
- ``FLOATING_POINT = IEEE64BIG | IEEE32BIG | IEEE64LITTLE | IEEE32LITTLE``;
- ``CHECKSUM``: the sum modulo 2^32 of the stored numbers read as unsigned 32-bit words
  (a double as its two 32-bit halves) in host order, in hexadecimal;
- ``PLAQUETTE``: ``<Re tr U_P> / N`` over all sites and planes; ``LINK_TRACE``:
  ``<Re tr U_mu(x)> / N``.

SU(2) is this project's extension with the same layout: ``DATATYPE = 4D_SU2_GAUGE_2x2``
or ``4D_SU2_GAUGE`` (first row; ``U = [[a, b], [-b*, a*]]``).

Our fields are ``[d, L_0 = T, L_1 = X, L_2 = Y, L_3 = Z, N, N]`` with direction 0 = time.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..atomic import write_bytes_atomic
from .gauge_layout import (
    GaugeFileError,
    check_memory,
    check_sites,
    checked_links,
    decode_links,
    encode_links,
    link_trace,
    mean_plaquette,
    within,
)

__all__ = ["read_nersc", "write_nersc", "nersc_checksum"]

_TYPES = {
    3: {"4D_SU3_GAUGE_3x3": 3, "4D_SU3_GAUGE": 2},
    2: {"4D_SU2_GAUGE_2x2": 2, "4D_SU2_GAUGE": 1},
}
_FLOATS = {"IEEE64BIG": ">f8", "IEEE32BIG": ">f4", "IEEE64LITTLE": "<f8", "IEEE32LITTLE": "<f4"}
MAX_HEADER = 1 << 16


def nersc_checksum(values: np.ndarray) -> int:
    """Sum of the numbers' 32-bit words (host order) modulo 2^32."""
    native = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("="))
    return int(native.view(np.uint32).sum(dtype=np.uint64) % (1 << 32))


def _parse_header(raw: bytes, path: Path) -> tuple[dict[str, str], int]:
    end = raw.find(b"END_HEADER")
    if not raw.startswith(b"BEGIN_HEADER") or end < 0:
        raise GaugeFileError(
            f"{path}: not a NERSC file (no BEGIN_HEADER ... END_HEADER in the first {MAX_HEADER} bytes)"
        )
    newline = raw.find(b"\n", end)
    if newline < 0:
        raise GaugeFileError(f"{path}: truncated after END_HEADER")
    header = {}
    try:
        text = raw[len(b"BEGIN_HEADER") : end].decode("ascii")
    except UnicodeDecodeError:
        raise GaugeFileError(f"{path}: header is not ASCII") from None
    for line in text.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            header[key.strip()] = value.strip()
    return header, newline + 1


def _get(header: dict, key: str, path: Path) -> str:
    if key not in header:
        raise GaugeFileError(f"{path}: header has no {key}")
    return header[key]


def _layout(header: dict[str, str], path: Path) -> tuple[int, int, tuple[int, int, int, int], np.dtype]:
    """``(n_colors, rows, (x, y, z, t), dtype)`` of a header; every value checked with Python
    integers (a hostile header allocates nothing)."""
    datatype = _get(header, "DATATYPE", path)
    fp = _get(header, "FLOATING_POINT", path)
    if fp not in _FLOATS:
        raise GaugeFileError(f"{path}: FLOATING_POINT = {fp!r}; allowed: {', '.join(_FLOATS)}")
    # some codes write 4D_SU3_GAUGE_3X3: the datatype is matched without regard to case
    kind = next((k for kinds in _TYPES.values() for k in kinds if k.upper() == datatype.upper()), None)
    if kind is None:
        allowed = ", ".join(k for kinds in _TYPES.values() for k in kinds)
        raise GaugeFileError(f"{path}: DATATYPE = {datatype!r}; allowed: {allowed} (any case)")
    n_colors = next(n for n, kinds in _TYPES.items() if kind in kinds)
    keys = [f"DIMENSION_{i}" for i in (1, 2, 3, 4)]
    try:
        dims = {key: int(_get(header, key, path)) for key in keys}
    except ValueError:
        raise GaugeFileError(f"{path}: DIMENSION_1..4 must be integers") from None
    check_sites(dims, path)
    x, y, z, t = dims.values()
    return n_colors, _TYPES[n_colors][kind], (x, y, z, t), np.dtype(_FLOATS[fp])


def _read_data(path: Path) -> tuple[dict[str, str], bytes, int, int, tuple[int, int, int, int], np.dtype]:
    """``(header, data, n_colors, rows, (x, y, z, t), dtype)``: the data bytes are read only
    once their size agrees with the header and their links fit in memory."""
    with open(path, "rb") as fh:
        header, offset = _parse_header(fh.read(MAX_HEADER), path)
        n_colors, rows, (x, y, z, t), dtype = _layout(header, path)
        n_sites = x * y * z * t
        n_bytes = n_sites * 4 * rows * n_colors * 2 * dtype.itemsize
        available = os.fstat(fh.fileno()).st_size - offset
        if available != n_bytes:
            raise GaugeFileError(
                f"{path}: {available} data bytes; the header ({header['DATATYPE']}, "
                f"{header['FLOATING_POINT']}, {x}x{y}x{z}x{t}) needs {n_bytes}"
            )
        check_memory(path, n_bytes, n_sites, n_colors)
        fh.seek(offset)
        data = fh.read(n_bytes)
    if len(data) != n_bytes:
        raise GaugeFileError(f"{path}: {len(data)} data bytes read; the header needs {n_bytes} (file changed?)")
    return header, data, n_colors, rows, (x, y, z, t), dtype


def _check_checksum(header: dict[str, str], values: np.ndarray, path: Path) -> None:
    stored = _get(header, "CHECKSUM", path)
    computed = nersc_checksum(values)
    try:
        stored_int = int(stored, 16)
    except ValueError:
        raise GaugeFileError(
            f"{path}: CHECKSUM = {stored!r} is not hexadecimal "
            "(--no-checksum imports a file whose checksum is a placeholder)"
        ) from None
    if stored_int != computed:
        raise GaugeFileError(
            f"{path}: checksum mismatch: header {stored_int:08x}, data {computed:08x} "
            "(--no-checksum imports a file whose checksum is a placeholder)"
        )


def _check_averages(header: dict[str, str], raw: np.ndarray, plaquette_tol: float, single: bool, path: Path) -> None:
    """The header's PLAQUETTE and LINK_TRACE against the links' (NaN-safe: a NaN or an
    infinite recomputed value never agrees)."""
    for key, value in (("PLAQUETTE", mean_plaquette(raw)), ("LINK_TRACE", link_trace(raw))):
        if key in header:
            try:
                stored_value = float(header[key])
            except ValueError:
                raise GaugeFileError(f"{path}: {key} = {header[key]!r} is not a number") from None
            tol = plaquette_tol * max(1.0, abs(value)) + (1e-6 if single else 0.0)
            if not (math.isfinite(value) and within(abs(stored_value - value), tol)):
                raise GaugeFileError(
                    f"{path}: {key.lower()} mismatch: header {stored_value:.10g}, recomputed {value:.10g}"
                )


def read_nersc(
    path: str | os.PathLike, plaquette_tol: float = 1e-6, check_checksum: bool = True, reproject: bool = False
) -> tuple[np.ndarray, dict[str, str]]:
    """``(links [4, T, X, Y, Z, N, N] complex128, header)`` with every check applied.

    ``check_checksum = False`` skips the checksum (a placeholder such as ``ffffffff``); the
    plaquette, link trace and group checks still apply. ``reproject`` imports links off
    SU(N) by more than the tolerance projected onto it. The header gains
    ``lqcdml_checksum`` and ``lqcdml_group_deviation``.

    Errors (``GaugeFileError``) name the file and, for a mismatch, both values: checksum,
    plaquette (relative ``plaquette_tol``), link trace, size, datatype, and the memory a
    file too large for this machine would need (checked before its data are read).
    Floating-point warnings of hostile numbers are silenced: the checks report them.
    """
    path = Path(path)
    header, data, n_colors, rows, (x, y, z, t), dtype = _read_data(path)
    values = np.frombuffer(data, dtype=dtype)
    if check_checksum:
        _check_checksum(header, values, path)
    with np.errstate(all="ignore"):
        raw = decode_links(values, (t, z, y, x), rows, n_colors)
        if not np.all(np.isfinite(raw)):
            raise GaugeFileError(f"{path}: links hold NaN or infinite numbers")
        header = {**header, "lqcdml_checksum": "verified" if check_checksum else "not checked"}
        _check_averages(header, raw, plaquette_tol, dtype.itemsize == 4, path)
        links, deviation = checked_links(raw, path, reproject=reproject)
    header = {**header, "lqcdml_group_deviation": f"{deviation:.3g}"}
    return links, header


def write_nersc(
    path: str | os.PathLike,
    links: np.ndarray,
    precision: str = "double",
    two_rows: bool = False,
    ensemble_id: str = "lqcdml",
    sequence_number: int = 0,
) -> dict[str, str]:
    """Write ``links [4, T, X, Y, Z, N, N]`` (SU(2) or SU(3)); big-endian. Returns the header."""
    links = np.asarray(links)
    n_colors = links.shape[-1]
    if links.ndim != 7 or links.shape[0] != 4 or n_colors not in _TYPES or links.shape[-2] != n_colors:
        raise GaugeFileError(f"write_nersc: links of shape {links.shape}; allowed: [4, T, X, Y, Z, N, N], N = 2 or 3")
    if precision not in ("double", "single"):
        raise GaugeFileError(f"write_nersc: precision = {precision!r}; allowed: double, single")
    rows = n_colors - 1 if two_rows else n_colors
    datatype = next(k for k, r in _TYPES[n_colors].items() if r == rows)
    fp = "IEEE64BIG" if precision == "double" else "IEEE32BIG"
    values = encode_links(links, rows, _FLOATS[fp])
    t, x, y, z = links.shape[1:5]
    header = {
        "HDR_VERSION": "1.0",
        "DATATYPE": datatype,
        "STORAGE_FORMAT": "1.0",
        "DIMENSION_1": str(x),
        "DIMENSION_2": str(y),
        "DIMENSION_3": str(z),
        "DIMENSION_4": str(t),
        "LINK_TRACE": f"{link_trace(links):.15g}",
        "PLAQUETTE": f"{mean_plaquette(links):.15g}",
        **{f"BOUNDARY_{i}": "PERIODIC" for i in (1, 2, 3, 4)},
        "CHECKSUM": f"{nersc_checksum(values):08x}",
        "ENSEMBLE_ID": ensemble_id,
        "SEQUENCE_NUMBER": str(int(sequence_number)),
        "FLOATING_POINT": fp,
    }
    text = "BEGIN_HEADER\n" + "".join(f"{k} = {v}\n" for k, v in header.items()) + "END_HEADER\n"
    write_bytes_atomic(path, text.encode("ascii") + values.tobytes())
    return header
