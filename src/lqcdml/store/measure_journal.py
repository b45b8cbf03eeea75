"""Measurement journal: the rows of a measurement in progress, committed one configuration
at a time, so that a killed measurement continues where it stopped.

Layout of ``<out>.measuring`` (one Zarr v3 group beside the observable store ``out``; entry
``k`` is the ``k``-th configuration measured, configuration ``first + k`` of the ensemble):

- ``log``: uint8 ``[capacity, width]``, one fixed-width binary record per entry, in chunks of
  up to ``BLOCK`` entries (about 64 KiB), zstd-compressed and crc32c-checksummed like the
  ensemble store. A record is little-endian: ``digest`` (uint64: the first 8 bytes of
  BLAKE2b over the rest of the record up to its end), ``size`` (int64, bytes after the
  header), ``trajectory`` (int64), ``source`` (uint64: ``record_sources``, a digest of all
  the ensemble store's records of the configuration, the content digest of its fields among
  them), ``entries`` (int64: measured (configuration, chain) entries), ``n_vars`` (int64),
  then one byte per variable of the layout so far (1: the entry has a row of it; an
  expensive measurement has none on a configuration without labelled chains) and the bytes
  of those rows in layout order. The rest of the width is zero.
- attrs: ``lqcdml_measure_journal`` (format, version and the ``identity`` of the
  measurement, JSON chosen by the caller), ``layout`` (``[[name, {"dims", "coords",
  "dtype", "shape"}], ...]`` in order of first appearance: the row's dtype and shape
  ``[B, ...]``, each coordinate as dtype, shape and values), ``n_committed`` and ``seconds``
  (the wall time spent on the committed entries).

Commit protocol for entry ``k``: write its record (after growing ``log`` if it is too narrow),
then the attrs with ``n_committed = k + 1`` (and the layout) in one write. Zarr's local store
replaces every key atomically, so a writer killed at any moment leaves ``n_committed`` whole
entries; two writes per configuration. Reading trusts nothing it cannot check: anything
unreadable, missing (a lost chunk reads as zeros and fails its digest) or inconsistent
raises ``StoreDamage``. No pickle anywhere: numbers in a Zarr array, the rest JSON.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from .ensemble import BLOCK, EnsembleStore, StoreDamage, StoreError, remove_failed_build

__all__ = [
    "JOURNAL_FORMAT",
    "JOURNAL_VERSION",
    "MeasureJournal",
    "journal_path",
    "record_sources",
    "remove_journal",
]

JOURNAL_FORMAT = "lqcdml-measure-journal"
JOURNAL_VERSION = 1
_KEY = "lqcdml_measure_journal"
_SUFFIX = ".measuring"
#: the header of a record: digest, size, trajectory, source, entries, n_vars
_HEADER = np.dtype(
    [
        ("digest", "<u8"),
        ("size", "<i8"),
        ("trajectory", "<i8"),
        ("source", "<u8"),
        ("entries", "<i8"),
        ("n_vars", "<i8"),
    ]
)
#: bytes of one chunk of ``log`` (at most; at least one entry a chunk)
_CHUNK_BYTES = 1 << 16
_CONFIG: Any = {"write_empty_chunks": True}

#: a variable's layout for ``commit``: its own dimensions and coordinates
Layout = Mapping[str, tuple[Sequence[str], Mapping[str, Any]]]


def journal_path(out: str | os.PathLike) -> Path:
    """The journal of the observable store ``out``: ``<out>.measuring``."""
    out = Path(out)
    return out.with_name(out.name + _SUFFIX)


def _leftovers(path: Path) -> list[Path]:
    return [path.with_name(path.name + s) for s in (".creating", ".removing")]


def remove_journal(path: str | os.PathLike) -> None:
    """Remove the journal at ``path`` (and leftovers of a killed creation or removal): renamed
    aside first, so that a removal killed halfway never leaves a journal that looks whole."""
    path = Path(path)
    creating, removing = _leftovers(path)
    if path.exists() or path.is_symlink():
        _remove(removing)
        path.rename(removing)
    for leftover in (creating, removing):
        _remove(leftover)


def _remove(path: Path) -> None:
    """Remove a folder or a file (a journal's path may hold anything after damage)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _digest(data: bytes | memoryview) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def record_sources(store: EnsembleStore, start: int) -> tuple[np.ndarray, np.ndarray]:
    """``(trajectory, source)`` of each committed configuration from ``start`` on; ``source``
    is the first 8 bytes of BLAKE2b over every record of the configuration (trajectory,
    acceptance, delta_H, the cheap observable, counters and the fields' content digest), as
    uint64: a journal entry is valid only while its configuration's source is unchanged."""
    records = {name: store.read_records(name)[start:] for name in store.record_names}
    n = max(store.n_committed - start, 0)
    sources = np.empty(n, dtype=np.uint64)
    for k in range(n):
        h = hashlib.blake2b(digest_size=8)
        for name, values in records.items():
            value = np.ascontiguousarray(values[k], dtype=values.dtype.newbyteorder("<"))
            h.update(f"{name}|{value.dtype.str}|{list(value.shape)}|".encode())
            h.update(value.tobytes())
        sources[k] = int.from_bytes(h.digest(), "little")
    return records["trajectory"].astype(np.int64), sources


def _encode_coords(name: str, coords: Mapping[str, Any]) -> dict[str, Any]:
    """Coordinates as JSON: dtype, shape and values (exact for numbers and strings)."""
    out = {}
    for key, value in coords.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "biufU":
            raise StoreError(
                f"coordinate {key!r} of {name!r} has data type {arr.dtype}; the measurement journal "
                "holds numbers and strings"
            )
        out[key] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "values": arr.ravel().tolist()}
    return out


def _decode_coords(data: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {
        key: np.array(v["values"], dtype=np.dtype(v["dtype"])).reshape([int(x) for x in v["shape"]])
        for key, v in data.items()
    }


@dataclass(frozen=True)
class _Variable:
    """A measured variable: its dimensions, coordinates and the dtype and shape of a row."""

    dims: tuple[str, ...]
    coords: dict[str, np.ndarray]
    dtype: np.dtype
    shape: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Variable:
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in "biufc" or dtype.hasobject:
            raise ValueError(f"row data type {dtype}")
        shape = tuple(int(x) for x in data["shape"])
        return cls(tuple(str(d) for d in data["dims"]), _decode_coords(data["coords"]), dtype, shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def _encode_layout(layout: Layout, rows: Mapping[str, np.ndarray], known: Mapping[str, _Variable]) -> list:
    """The JSON layout: each variable's dims and coords, its row dtype and shape from ``known``
    or, for a new one, from its row in ``rows``."""
    out = []
    for name, (dims, coords) in layout.items():
        like = known[name] if name in known else np.asarray(rows[name])
        dtype = np.dtype(like.dtype).newbyteorder("<")
        entry: dict[str, Any] = {"dims": list(dims), "coords": _encode_coords(name, coords), "dtype": dtype.str}
        out.append([name, {**entry, "shape": list(like.shape)}])
    return out


def _array(group: zarr.Group, name: str) -> zarr.Array:
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{name!r} is a group, not an array")
    return node.with_config(_CONFIG)


class MeasureJournal:
    """The committed entries of one measurement in progress (see the module docstring)."""

    def __init__(self, group: zarr.Group, path: Path):
        self._group, self.path = group, path
        attrs: dict[str, Any] = group.attrs.asdict()  # JSON values, checked and converted below
        info = attrs.get(_KEY)
        if not isinstance(info, dict) or info.get("format") != JOURNAL_FORMAT:
            raise StoreDamage(f"{self._where}: not an lqcdml measurement journal")
        if info.get("format_version") != JOURNAL_VERSION or not isinstance(info.get("identity"), dict):
            raise StoreDamage(f"{self._where}: journal format version {info.get('format_version')!r} is not read")
        self.identity: dict[str, Any] = info["identity"]
        n = attrs.get("n_committed")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise StoreDamage(f"{self._where}: n_committed = {n!r}")
        self._n = n
        self.seconds = float(attrs.get("seconds", 0.0))
        self.capacity = int(attrs["capacity"])
        self._vars = {str(name): _Variable.from_json(v) for name, v in attrs["layout"]}
        self._log = _array(group, "log") if "log" in group else None
        if n and (self._log is None or self._log.shape[0] < n):
            raise StoreDamage(f"{self._where}: its log holds fewer than the {n} committed entries")

    @property
    def _where(self) -> str:
        return f"measurement journal {str(self.path)!r}"

    # --- opening -------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike, identity: Mapping[str, Any], capacity: int) -> MeasureJournal:
        """A new, empty journal for ``capacity`` entries (built beside ``path``, then renamed
        into place; ``path`` must not exist)."""
        path = Path(path)
        tmp = _leftovers(path)[0]
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
            info: dict[str, Any] = {
                "format": JOURNAL_FORMAT,
                "format_version": JOURNAL_VERSION,
                "identity": dict(identity),
            }
            group.attrs.update({_KEY: info, "layout": [], "capacity": capacity, "n_committed": 0, "seconds": 0.0})
        except BaseException:
            remove_failed_build(tmp)
            raise
        tmp.rename(path)
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> MeasureJournal:
        """Open a journal; ``StoreDamage`` if it is unreadable or inconsistent in any way."""
        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode="r+", zarr_format=3)
            journal = cls(group, path)
        except StoreDamage:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged journal fails in any way
            raise StoreDamage(
                f"measurement journal {str(path)!r} cannot be read ({exc.__class__.__name__}: {exc})"
            ) from None
        for leftover in path.rglob("*.partial"):  # zarr's temporaries of a killed write
            leftover.unlink(missing_ok=True)
        return journal

    # --- reading -------------------------------------------------------------------
    @property
    def n_committed(self) -> int:
        return self._n

    @property
    def layout(self) -> dict[str, tuple[tuple[str, ...], dict[str, np.ndarray], tuple[int, ...]]]:
        """name -> (dims, coords, row shape) of every variable, in order of first appearance."""
        return {name: (v.dims, v.coords, v.shape) for name, v in self._vars.items()}

    def read(self) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        """The rows of each committed entry (only the variables it has) and the records
        ``trajectory``, ``source`` and ``entries``; ``StoreDamage`` if any entry fails its digest."""
        if not self._n:
            return [], {name: np.zeros(0, dtype=_HEADER[name]) for name in ("trajectory", "source", "entries")}
        assert self._log is not None  # checked on opening
        try:
            log = np.ascontiguousarray(cast(np.ndarray, self._log[: self._n]), dtype=np.uint8)
        except Exception as exc:  # noqa: BLE001 - codec and checksum failures
            raise StoreDamage(f"{self._where}: its log is corrupted ({exc.__class__.__name__}: {exc})") from None
        if log.shape[1] < _HEADER.itemsize:
            raise StoreDamage(f"{self._where}: its log is {log.shape[1]} bytes wide")
        headers = log[:, : _HEADER.itemsize].copy().view(_HEADER)[:, 0]
        try:
            rows = [self._decode(k, log[k], headers[k]) for k in range(self._n)]
        except StoreDamage:
            raise
        except Exception as exc:  # noqa: BLE001 - a record that passed its digest yet does not decode
            raise StoreDamage(f"{self._where}: an entry cannot be decoded ({exc.__class__.__name__}: {exc})") from None
        return rows, {
            name: headers[name].astype(_HEADER[name].newbyteorder("=")) for name in ("trajectory", "source", "entries")
        }

    def _decode(self, k: int, record: np.ndarray, header: np.void) -> dict[str, np.ndarray]:
        """The rows of entry ``k`` from its record, checked against its digest."""
        end = _HEADER.itemsize + int(header["size"])
        if not _HEADER.itemsize <= end <= record.size or _digest(record[8:end].data) != int(header["digest"]):
            raise StoreDamage(f"{self._where}: entry {k} fails its digest (lost or damaged)")
        n_vars, names = int(header["n_vars"]), list(self._vars)
        offset = _HEADER.itemsize + n_vars
        if not 0 <= n_vars <= len(names) or offset > end:
            raise StoreDamage(f"{self._where}: entry {k} names {n_vars} variables of {len(names)}")
        rows = {}
        for name, flag in zip(names[:n_vars], record[_HEADER.itemsize : offset], strict=True):
            if flag:
                var = self._vars[name]
                rows[name] = (
                    record[offset : offset + var.nbytes]
                    .view(var.dtype)
                    .reshape(var.shape)
                    .astype(var.dtype.newbyteorder("="))
                )
                offset += var.nbytes
        if offset != end:
            raise StoreDamage(f"{self._where}: entry {k} has {end - offset} bytes its variables do not explain")
        return rows

    # --- writing -------------------------------------------------------------------
    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` entries (never shrinks)."""
        if capacity <= self.capacity:
            return
        if self._log is not None:
            self._log.resize((capacity, self._log.shape[1]))
        self._group.attrs["capacity"] = capacity
        self.capacity = capacity

    def _encode(
        self, rows: Mapping[str, np.ndarray], variables: Mapping[str, _Variable], record: Mapping[str, Any]
    ) -> np.ndarray:
        """The binary record of one entry (see the module docstring)."""
        parts = [np.array([name in rows for name in variables], dtype=np.uint8).tobytes()]
        for name, var in variables.items():
            if name in rows:
                row = np.asarray(rows[name])
                if row.shape != var.shape or row.dtype.newbyteorder("<") != var.dtype:
                    raise StoreError(
                        f"{self._where}: variable {name!r} of {row.dtype} {list(row.shape)}; "
                        f"its earlier rows are {var.dtype} {list(var.shape)}"
                    )
                parts.append(np.ascontiguousarray(row, dtype=var.dtype).tobytes())
        payload = b"".join(parts)
        header = np.zeros(1, dtype=_HEADER)
        header["size"], header["n_vars"] = len(payload), len(variables)
        for key in ("trajectory", "source", "entries"):
            header[key] = record[key]
        body = header.tobytes()[8:] + payload
        header["digest"] = _digest(body)
        return np.frombuffer(header.tobytes()[:8] + body, dtype=np.uint8)

    def _log_for(self, width: int) -> zarr.Array:
        """``log``, made or widened for records of ``width`` bytes."""
        if self._log is None:
            per_chunk = max(1, min(BLOCK, _CHUNK_BYTES // width))
            self._log = self._group.create_array(
                "log",
                shape=(self.capacity, width),
                chunks=(per_chunk, width),
                dtype="uint8",
                compressors=[ZstdCodec(level=1), Crc32cCodec()],
                config=_CONFIG,
                fill_value=0,
                overwrite=True,
            ).with_config(_CONFIG)
        elif self._log.shape[1] < width:
            self._log.resize((self._log.shape[0], max(width, 2 * self._log.shape[1])))
        return self._log

    def commit(
        self,
        k: int,
        rows: Mapping[str, np.ndarray],
        layout: Layout,
        record: Mapping[str, Any],
        seconds: float,
    ) -> None:
        """Write entry ``k`` (must be ``n_committed``) and commit it: ``rows`` its variables,
        ``layout`` the dims and coords of every variable so far (earlier ones first, in their
        order; the last entry's coordinates are kept), ``record`` its ``trajectory``, ``source``
        and ``entries``, ``seconds`` the wall time of all committed entries."""
        if k != self._n or k >= self.capacity:
            raise StoreError(f"{self._where}: commit of entry {k}; next is {self._n} of {self.capacity}")
        names, committed = list(layout), list(self._vars)
        if names[: len(committed)] != committed or not set(rows) <= set(names):
            raise StoreError(f"{self._where}: variables {names} do not extend the committed {committed}")
        encoded = _encode_layout(layout, rows, self._vars)
        variables = {name: _Variable.from_json(v) for name, v in encoded}
        data = self._encode(rows, variables, record)
        log = self._log_for(data.size)
        line = np.zeros(log.shape[1], dtype=np.uint8)
        line[: data.size] = data
        log[k] = line
        self._group.attrs.update({"layout": encoded, "n_committed": k + 1, "seconds": float(seconds)})
        self._n, self._vars = k + 1, variables
