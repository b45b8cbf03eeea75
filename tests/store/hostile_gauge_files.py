"""Builders of hostile gauge files, shared by the reader and the command-line tests.

The large ones are sparse: their headers are written, then the file is extended with
``truncate`` (a hole uses no disk and reads as zeros), so they claim ~10.5 GB and cost
nothing; a reader must refuse them from their headers without reading the data.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from lqcdml.lattice import SU, make_generators
from lqcdml.store import write_nersc
from lqcdml.store.gauge_layout import decode_links, encode_links, group_deviation
from lqcdml.store.ildg import scidac_checksum
from lqcdml.store.lime import LimeRecord, write_lime
from lqcdml.store.nersc import nersc_checksum

#: (x, y, z, t) of a ~10.5 GB SU(3) file: 18,350,080 sites of 576 bytes (3x3, double)
BIG_DIMS = (64, 64, 64, 70)
BIG_BYTES = math.prod(BIG_DIMS) * 4 * 9 * 2 * 8
SHAPE = (4, 2, 2, 2)  # T, X, Y, Z of the small files


def links(seed: int = 0, n: int = 3) -> np.ndarray:
    """``[4, T, X, Y, Z, N, N]`` SU(N) links near the identity."""
    return SU(n).near_identity(make_generators(seed, 1), (4, *SHAPE), 0.5)[0].numpy()


def nersc_header(dims: tuple[int, ...], datatype: str = "4D_SU3_GAUGE_3x3", checksum: str = "0") -> bytes:
    keys = {f"DIMENSION_{i + 1}": d for i, d in enumerate(dims)}
    keys.update(DATATYPE=datatype, FLOATING_POINT="IEEE64BIG", CHECKSUM=checksum)
    return ("BEGIN_HEADER\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()) + "END_HEADER\n").encode()


def huge_dimension_nersc(path: Path, dims: tuple[int, ...] = (10**22, 4, 4, 4)) -> Path:
    """A NERSC header with an extent (or a site count) no int64 holds, and some data."""
    path.write_bytes(nersc_header(dims) + bytes(4096))
    return path


def sparse_nersc(path: Path) -> Path:
    """A ~10.5 GB NERSC file whose header agrees with its size (all links zero)."""
    header = nersc_header(BIG_DIMS)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + BIG_BYTES)
    return path


def _lime_header(kind: str, length: int, flags: int = 0) -> bytes:
    """A LIME record header (magic, version 1, flags, length, type; big-endian)."""
    return struct.pack(">IHHQ128s", 0x456789AB, 1, flags, length, kind.encode().ljust(128, b"\0"))


def _format_xml(dims: tuple[int, ...]) -> bytes:
    lx, ly, lz, lt = dims
    return (
        f"<ildgFormat><version>1.0</version><field>su3gauge</field><precision>64</precision>"
        f"<lx>{lx}</lx><ly>{ly}</ly><lz>{lz}</lz><lt>{lt}</lt></ildgFormat>"
    ).encode()


def sparse_ildg(path: Path, dims: tuple[int, ...] = BIG_DIMS, checksum: bool = True) -> Path:
    """An ILDG file whose ``ildg-binary-data`` record claims ~10.5 GB (a hole), with an
    ``ildg-format`` record of ``dims`` (x, y, z, t) and, after the hole, a checksum record."""
    fmt = _format_xml(dims)
    with open(path, "wb") as fh:
        fh.write(_lime_header("ildg-format", len(fmt), 1 << 15) + fmt + bytes(-len(fmt) % 8))
        fh.write(_lime_header("ildg-binary-data", BIG_BYTES))
        end = fh.tell() + BIG_BYTES
        fh.truncate(end)
        if checksum:
            xml = b"<scidacChecksum><version>1.0</version><suma>0</suma><sumb>0</sumb></scidacChecksum>"
            fh.seek(end)
            fh.write(_lime_header("scidac-checksum", len(xml), 1 << 14) + xml)
    return path


def byte_swapped_values(u: np.ndarray) -> np.ndarray:
    """The numbers of ``u`` written little-endian and read big-endian (``>f8``), every one
    finite (the few that swap into NaN or inf are set to 6e307, as swapped values are)."""
    values = np.frombuffer(encode_links(u, u.shape[-1], "<f8").tobytes(), dtype=">f8").copy()
    values[~np.isfinite(values)] = 6e307
    return values


def byte_swapped_ildg(path: Path, checksum: bool = False) -> Path:
    """An ILDG file whose data were written little-endian: finite numbers whose products
    overflow (the group deviation is NaN, which once passed ``deviation > tol``); with
    ``checksum`` a SciDAC checksum of those bytes (it agrees)."""
    values = byte_swapped_values(links())
    t, x, y, z = SHAPE
    assert math.isnan(group_deviation(decode_links(values, (t, z, y, x), 3, 3)))  # the attack's premise
    data = values.tobytes()
    records = [
        LimeRecord("ildg-format", _format_xml((x, y, z, t)), True, False),
        LimeRecord("ildg-binary-data", data, False, not checksum),
    ]
    if checksum:
        suma, sumb = scidac_checksum(np.frombuffer(data, np.uint8).reshape(t * z * y * x, -1))
        xml = f"<scidacChecksum><suma>{suma:08x}</suma><sumb>{sumb:08x}</sumb></scidacChecksum>"
        records.append(LimeRecord("scidac-checksum", xml.encode(), False, True))
    write_lime(path, records)
    return path


def inf_nersc(path: Path, two_rows: bool = False) -> Path:
    """A NERSC file with one infinite number and a checksum that agrees with it."""
    write_nersc(path, links(), two_rows=two_rows)
    raw = path.read_bytes()
    start = raw.index(b"END_HEADER\n") + len(b"END_HEADER\n")
    values = np.frombuffer(raw[start:], dtype=">f8").copy()
    values[3] = np.inf
    header = raw[:start].decode()
    old = header.split("CHECKSUM = ")[1].split("\n")[0]
    header = header.replace(f"CHECKSUM = {old}", f"CHECKSUM = {nersc_checksum(values):08x}")
    path.write_bytes(header.encode() + values.tobytes())
    return path
