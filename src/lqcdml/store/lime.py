"""LIME container records (the packaging of ILDG and SciDAC files).

A LIME file is a sequence of records, each a 144-byte header followed by the data padded
with zero bytes to a multiple of 8 (after the LIME documentation of USQCD's c-lime):

=========  ======  ======================================================
offset      bytes   field (big-endian)
=========  ======  ======================================================
0           4       magic number ``0x456789ab``
4           2       version (1)
6           2       flags: bit 15 message begin, bit 14 message end
8           8       data length in bytes (without padding)
16          128     record type, ASCII, NUL-padded
=========  ======  ======================================================
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from .gauge_layout import GaugeFileError

__all__ = ["LimeRecord", "read_lime", "write_lime", "LIME_MAGIC"]

LIME_MAGIC = 0x456789AB
_HEADER = struct.Struct(">IHHQ128s")
MB, ME = 1 << 15, 1 << 14


@dataclass(frozen=True)
class LimeRecord:
    type: str
    data: bytes
    message_begin: bool = False
    message_end: bool = False


def read_lime(path: str | os.PathLike, max_bytes: int = 1 << 34) -> list[LimeRecord]:
    """All records of a LIME file; a truncated or foreign file is an error naming it."""
    path = Path(path)
    size = path.stat().st_size
    records = []
    with open(path, "rb") as fh:
        offset = 0
        while offset < size:
            head = fh.read(_HEADER.size)
            if len(head) < _HEADER.size:
                raise GaugeFileError(f"{path}: truncated LIME record header at byte {offset}")
            magic, version, flags, length, kind = _HEADER.unpack(head)
            if magic != LIME_MAGIC:
                raise GaugeFileError(f"{path}: not a LIME record at byte {offset} (magic {magic:#x}, "
                                     f"expected {LIME_MAGIC:#x})")
            if version != 1:
                raise GaugeFileError(f"{path}: LIME version {version} at byte {offset}; allowed: 1")
            padded = (length + 7) // 8 * 8
            if length > max_bytes or offset + _HEADER.size + length > size:
                raise GaugeFileError(f"{path}: LIME record at byte {offset} claims {length} bytes; "
                                     f"the file has {size - offset - _HEADER.size} left")
            data = fh.read(length)
            fh.read(padded - length)
            try:
                name = kind.rstrip(b"\0").decode("ascii")
            except UnicodeDecodeError:
                raise GaugeFileError(f"{path}: LIME record type at byte {offset} is not ASCII") from None
            records.append(LimeRecord(name, data, bool(flags & MB), bool(flags & ME)))
            offset += _HEADER.size + padded
    return records


def write_lime(path: str | os.PathLike, records: list[LimeRecord]) -> None:
    """Write records (through a temporary file and a rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for rec in records:
            kind = rec.type.encode("ascii")
            if len(kind) > 128:
                raise GaugeFileError(f"LIME record type {rec.type!r} longer than 128 bytes")
            flags = (MB if rec.message_begin else 0) | (ME if rec.message_end else 0)
            fh.write(_HEADER.pack(LIME_MAGIC, 1, flags, len(rec.data), kind.ljust(128, b"\0")))
            fh.write(rec.data)
            fh.write(b"\0" * ((len(rec.data) + 7) // 8 * 8 - len(rec.data)))
