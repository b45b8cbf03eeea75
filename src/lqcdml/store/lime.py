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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path
from .gauge_layout import GaugeFileError

__all__ = ["LimeRecord", "LimeEntry", "read_lime", "write_lime", "LIME_MAGIC", "EAGER_BYTES", "MAX_RECORDS"]

LIME_MAGIC = 0x456789AB
_HEADER = struct.Struct(">IHHQ128s")
MB, ME = 1 << 15, 1 << 14
#: records up to this many data bytes (XML metadata, checksums) are read with the headers
EAGER_BYTES = 1 << 16
#: most records a file may hold (gauge files have a handful)
MAX_RECORDS = 1 << 12


@dataclass(frozen=True)
class LimeRecord:
    """A record to write: type, data and the message flags."""

    type: str
    data: bytes
    message_begin: bool = False
    message_end: bool = False


@dataclass(frozen=True)
class LimeEntry:
    """A record of a file: type, flags and where its data lie (``offset``, ``length`` in
    bytes); the data of records up to ``EAGER_BYTES`` come with it, others are read only
    on demand (``read``, ``data``)."""

    path: Path
    type: str
    offset: int
    length: int
    message_begin: bool = False
    message_end: bool = False
    eager: bytes | None = field(default=None, repr=False)

    def read(self, max_bytes: int | None = None) -> bytes:
        """The data; a record over ``max_bytes`` or cut short since the headers were read is
        an error naming the file, the record and both sizes."""
        if self.eager is not None:
            return self.eager
        if max_bytes is not None and self.length > max_bytes:
            raise GaugeFileError(
                f"{self.path}: LIME record {self.type!r} has {self.length} bytes; allowed: at most {max_bytes}"
            )
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.length)
        if len(data) != self.length:
            raise GaugeFileError(
                f"{self.path}: LIME record {self.type!r} holds {len(data)} of its {self.length} "
                f"data bytes from byte {self.offset} (file changed?)"
            )
        return data

    @property
    def data(self) -> bytes:
        """``read()``: for the small records; read a large one with ``read(max_bytes)``."""
        return self.read()


def _record_header(head: bytes, offset: int, size: int, max_bytes: int, path: Path) -> tuple[str, int, int]:
    """``(type, flags, length)`` of the record header at byte ``offset``, checked against the
    file's ``size`` and ``max_bytes``."""
    if len(head) < _HEADER.size:
        raise GaugeFileError(f"{path}: truncated LIME record header at byte {offset}")
    magic, version, flags, length, kind = _HEADER.unpack(head)
    if magic != LIME_MAGIC:
        raise GaugeFileError(f"{path}: not a LIME record at byte {offset} (magic {magic:#x}, expected {LIME_MAGIC:#x})")
    if version != 1:
        raise GaugeFileError(f"{path}: LIME version {version} at byte {offset}; allowed: 1")
    if length > max_bytes or offset + _HEADER.size + length > size:
        raise GaugeFileError(
            f"{path}: LIME record at byte {offset} claims {length} bytes; "
            f"the file has {size - offset - _HEADER.size} left"
        )
    try:
        name = kind.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        raise GaugeFileError(f"{path}: LIME record type at byte {offset} is not ASCII") from None
    return name, flags, length


def read_lime(path: str | os.PathLike, max_bytes: int = 1 << 34) -> list[LimeEntry]:
    """The records of a LIME file, from their headers (data read lazily, sizes checked
    first); a truncated or foreign file, or one of more than ``MAX_RECORDS`` records, is an
    error naming it."""
    path = Path(path)
    records: list[LimeEntry] = []
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        offset = 0
        while offset < size:
            if len(records) == MAX_RECORDS:
                raise GaugeFileError(f"{path}: more than {MAX_RECORDS} LIME records; allowed: at most {MAX_RECORDS}")
            fh.seek(offset)
            name, flags, length = _record_header(fh.read(_HEADER.size), offset, size, max_bytes, path)
            start = offset + _HEADER.size
            eager = fh.read(length) if length <= EAGER_BYTES else None
            if eager is not None and len(eager) != length:
                raise GaugeFileError(f"{path}: LIME record at byte {offset} holds {len(eager)} of {length} bytes")
            records.append(LimeEntry(path, name, start, length, bool(flags & MB), bool(flags & ME), eager))
            offset = start + (length + 7) // 8 * 8
    return records


def write_lime(path: str | os.PathLike, records: Sequence[LimeRecord | LimeEntry]) -> None:
    """Write records (through a temporary file and a rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for rec in records:
            kind = rec.type.encode("ascii")
            if len(kind) > 128:
                raise GaugeFileError(f"LIME record type {rec.type!r} longer than 128 bytes")
            flags = (MB if rec.message_begin else 0) | (ME if rec.message_end else 0)
            data = rec.data  # read once (a record of a file is read on demand)
            fh.write(_HEADER.pack(LIME_MAGIC, 1, flags, len(data), kind.ljust(128, b"\0")))
            fh.write(data)
            fh.write(b"\0" * ((len(data) + 7) // 8 * 8 - len(data)))
