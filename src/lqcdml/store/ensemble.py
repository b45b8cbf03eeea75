"""Crash-safe Zarr v3 ensemble store.

Layout of ``<name>.zarr`` (one group):

- ``fields``: ``[capacity, B, ...]``, one configuration (all ``B`` chains) per chunk,
  zstd-compressed and crc32c-checksummed.
- per-configuration arrays ``trajectory`` ``[capacity]`` and ``accepted``,
  ``delta_H`` and the theory's cheap observable (``plaquette`` for gauge theories)
  ``[capacity, B]``, chunked in blocks of ``BLOCK`` configurations.
- ``checkpoint/slot0``, ``checkpoint/slot1``: the chain state after configuration
  ``n - 1`` (RNG states, acceptance counters, sampler extras) in slot ``n % 2``; the
  fields themselves are ``fields[n - 1]``.
- ``digest`` ``[capacity]`` (format 2): a content digest of each configuration, over its
  chain (config hash and replica), its index and the bytes of its fields, recorded at
  commit: a chunk swapped with another index or copied from another store fails it.
- attrs: ``lqcdml`` (format, package version, git commit, resolved ensemble config and
  its hash, replica, field shape and dtype, the list of records) and ``n_committed``.

Commit protocol for configuration ``i`` (so ``n = i + 1``): write ``fields[i]`` and the
per-configuration entries, then checkpoint slot ``n % 2``, then ``n_committed = n``.
Zarr's local store replaces every key atomically, so a writer killed at any moment
leaves the last commit intact: readers and restarts see ``n_committed``
configurations and the slot that belongs to them, the other slot may be half new.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import zarr
from numcodecs import Zstd
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.core.sync import sync

from ..errors import LqcdmlError

if TYPE_CHECKING:
    from zarr.core.array_spec import ArrayConfigParams

__all__ = [
    "EnsembleStore",
    "StoreError",
    "StoreDamage",
    "FORMAT",
    "FORMAT_VERSION",
    "BLOCK",
    "RECORDS",
    "DIGEST",
    "content_digest",
    "record_layout",
    "estimate_disk_bytes",
    "compressed_fraction",
]

FORMAT = "lqcdml-ensemble"
#: the version new stores are written in; 1 (without content digests) is still read and continued
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
BLOCK = 128
#: the per-configuration content digest (format 2): one uint64 per configuration
DIGEST = "digest"
#: the codecs of every array, in order (zarr v3 names)
CODECS = ("bytes", "zstd", "crc32c")
#: per-configuration arrays every store has: name -> (dtype, one value per chain?)
#: checkpoint arrays every chain state has (``ChainState.checkpoint``)
CHECKPOINT_ARRAYS = ("rng_states", "n_accepted")
RECORDS: dict[str, tuple[str, bool]] = {
    "trajectory": ("int64", False),
    "accepted": ("float64", True),
    "delta_H": ("float64", True),
}


class StoreError(LqcdmlError, RuntimeError):
    """A store that is missing, foreign, incompatible or damaged; the message says which."""


class StoreDamage(StoreError):
    """A store whose data or bookkeeping is damaged; the message names the array or index."""

    exit_code = 4


def record_layout(observable: str, counters: Sequence[str] = (), digest: bool = True) -> dict[str, tuple[str, bool]]:
    """The records of a store, in order: name -> (dtype, one value per chain?)."""
    layout = {**RECORDS, observable: ("float64", True), **{c: ("int64", False) for c in counters}}
    if digest:
        layout[DIGEST] = ("uint64", False)
    return layout


def content_digest(fields: np.ndarray, chain: str, index: int) -> int:
    """The digest of configuration ``index`` of the chain ``chain`` (config hash and replica):
    the first 8 bytes of BLAKE2b over both and the fields' little-endian bytes, as uint64."""
    data = np.ascontiguousarray(fields, dtype=np.asarray(fields).dtype.newbyteorder("<"))
    h = hashlib.blake2b(f"{chain}|{int(index)}|{data.dtype.str}|{list(data.shape)}|".encode(), digest_size=8)
    h.update(data.reshape(-1).view(np.uint8).data)
    return int.from_bytes(h.digest(), "little")


def _checkpoint_problem(arrays: Mapping[str, np.ndarray], n_chains: int) -> str | None:
    """What is wrong with the arrays of a chain state (``ChainState.checkpoint``) of
    ``n_chains`` chains, array by array; None if nothing."""
    for key in CHECKPOINT_ARRAYS:
        if key not in arrays:
            return f"array {key!r} is missing"
    for key, value in arrays.items():
        if value.ndim == 0 or value.shape[0] != n_chains:
            return f"array {key!r} of shape {list(value.shape)}; allowed: one entry per chain ({n_chains})"
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            return f"array {key!r} holds non-finite values"
    rng, acc = arrays["rng_states"], arrays["n_accepted"]
    if rng.dtype != np.uint8 or rng.ndim != 2:
        return f"array 'rng_states' of {rng.dtype} {list(rng.shape)}; allowed: uint8 [chains, state bytes]"
    if acc.dtype != np.int64 or acc.ndim != 1 or np.any(acc < 0):
        return f"array 'n_accepted' of {acc.dtype} {list(acc.shape)}; allowed: non-negative int64 [chains]"
    return None


def _allocation(folder: Path) -> tuple[int, int]:
    """(file allocation unit, bytes a new folder occupies) on the file system of ``folder``:
    probed with a throw-away folder where it can be made, else the block size for both."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    block = os.statvfs(probe).f_bsize
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".lqcdml-probe-", dir=probe))
    except OSError:
        return block, block
    try:
        return block, tmp.stat().st_blocks * 512
    finally:
        tmp.rmdir()


def compressed_fraction(sample: np.ndarray) -> float:
    """The size of ``sample`` (typical fields) after the store's zstd codec, over its raw size."""
    raw = np.ascontiguousarray(sample).tobytes()
    return len(Zstd(level=1, checksum=False).encode(raw)) / max(len(raw), 1)


def estimate_disk_bytes(
    folder: str | os.PathLike,
    config_bytes: int,
    field_shape: Sequence[int],
    n_configs: int,
    n_records: int,
    checkpoint_bytes: int,
    new: bool,
) -> int:
    """Disk space ``n_configs`` more configurations of ``field_shape`` ``[B, ...]`` take in a
    store in ``folder``, as the file system allocates it: each configuration one chunk of
    ``config_bytes`` (compressed) plus its checksum, rounded up to the allocation unit, in a
    chain of ``len(field_shape)`` chunk folders; the record blocks; with ``new`` also the
    metadata of ``n_records`` records and the two checkpoint slots of ``checkpoint_bytes``."""
    block, folder_bytes = _allocation(Path(folder))
    round_up = lambda size: -(-int(size) // block) * block  # noqa: E731
    per_config = round_up(config_bytes + 4) + len(field_shape) * folder_bytes
    n_blocks = -(-int(n_configs) // BLOCK)
    records = n_blocks * n_records * (round_up(BLOCK * 8 * int(field_shape[0])) + 2 * folder_bytes)
    total = int(n_configs) * per_config + records
    if new:  # zarr.json and a folder per array and group, two checkpoint slots
        total += (n_records + 8) * (round_up(1024) + folder_bytes) + 2 * round_up(checkpoint_bytes)
    return total


#: every chunk is written, also one equal to the fill value: a missing chunk is then damage,
#: never "all zeros" (zarr reads an absent chunk as the fill value)
_CONFIG: ArrayConfigParams = {"write_empty_chunks": True}


def _array(group: zarr.Group, name: str) -> zarr.Array:
    """The array ``name`` of ``group`` (KeyError if there is none)."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"{name!r} is a group, not an array")
    return node


def _group(group: zarr.Group, name: str) -> zarr.Group:
    """The group ``name`` of ``group`` (KeyError if there is none)."""
    node = group[name]
    if not isinstance(node, zarr.Group):
        raise TypeError(f"{name!r} is an array, not a group")
    return node


def _write_together(writes: Sequence[tuple[zarr.Array, Any, np.ndarray]]) -> None:
    """``array[selection] = value`` for every entry, in one round trip to zarr's event loop
    (the chunks are separate files; one call per array cost a thread hand-off each, most of a
    small lattice's commit). Returns when every write has ended; the first error is raised
    then, so that no write of a failed commit is still running when the caller goes on."""

    async def _all() -> list:
        return await asyncio.gather(
            *(arr._async_array.setitem(sel, value) for arr, sel, value in writes), return_exceptions=True
        )

    errors = [r for r in sync(_all()) if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


def settle_zarr_writes() -> None:
    """Return once no task is left on zarr's event loop.

    A zarr call that raises on one write leaves its sibling writes running (``asyncio.gather``
    cancels none of them), and each may still create its folder and file. A caller that
    removes what a failed call was building waits here first: a write still in flight after
    the removal would bring the folder back."""

    async def _rest() -> None:
        me = asyncio.current_task()
        while others := [t for t in asyncio.all_tasks() if t is not me and not t.done()]:
            await asyncio.wait(others)

    sync(_rest())


def remove_failed_build(folder: Path) -> None:
    """Remove ``folder``, the partial result of a failed zarr build, after its writes ended."""
    settle_zarr_writes()
    shutil.rmtree(folder, ignore_errors=True)


def _codecs() -> list:
    return [ZstdCodec(level=1), Crc32cCodec()]


class EnsembleStore:
    """An ensemble on disk: committed configurations, their records and the chain state."""

    def __init__(self, group: zarr.Group, path: Path):
        self._group = group
        self.path = path
        attrs: dict[str, Any] = group.attrs.asdict()
        self._meta: dict[str, Any] = dict(attrs["lqcdml"])
        where = str(path)
        n = attrs.get("n_committed")
        if isinstance(n, bool) or not isinstance(n, int):
            raise StoreDamage(f"store {where!r}: n_committed = {n!r} (missing or not an integer); the store is damaged")
        self._n_committed = n
        records = self._meta.get("records")
        if not isinstance(records, list) or not all(isinstance(r, str) for r in records):
            raise StoreDamage(f"store {where!r}: its list of records {records!r} is damaged")
        self._arrays = {}
        for name in ("fields", *records):
            try:
                self._arrays[name] = _array(group, name).with_config(_CONFIG)
            except KeyError:
                raise StoreDamage(f"store {where!r}: array {name!r} is missing; the store is damaged") from None
            except Exception as exc:  # noqa: BLE001 - unreadable array metadata in any way
                raise StoreDamage(
                    f"store {where!r}: array {name!r} has damaged metadata ({exc.__class__.__name__}: {exc})"
                ) from None
        capacity = self._arrays["fields"].shape[0]
        if not 0 <= n <= capacity:
            raise StoreDamage(
                f"store {where!r}: n_committed = {n} outside 0..{capacity} (the capacity); the store is damaged"
            )
        self._slots: dict[str, zarr.Group] = {}
        self._slot_arrays: dict[str, zarr.Array] = {}  # "slotK/key" -> checkpoint array (cache)
        self._digests: np.ndarray | None = None  # content digests of the committed configurations (cache)
        self._checkpoint: tuple[int, dict[str, Any]] | None = None  # (n_committed, content) of the last read

    # --- opening -------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        field_shape: Sequence[int],
        dtype: str,
        capacity: int,
        meta: Mapping[str, Any],
        observable: str = "plaquette",
        counters: Sequence[str] = (),
    ) -> EnsembleStore:
        """A new, empty store; ``field_shape`` is ``[B, ...]``; ``meta`` must be JSON.

        ``observable`` names the cheap per-configuration observable recorded beside
        the fields (one value per chain); ``counters`` the sampler's cost counters
        recorded per configuration (one integer for the batch).
        """
        path = Path(path)
        if path.exists():
            raise StoreError(f"store {str(path)!r} exists already; refusing to overwrite it")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        try:
            cls._build(tmp, field_shape, dtype, capacity, meta, observable, tuple(counters))
        except BaseException:
            remove_failed_build(tmp)  # a failed creation leaves nothing behind
            raise
        tmp.rename(path)  # the store appears complete or not at all
        return cls.open(path, mode="r+")

    @staticmethod
    def _build(
        tmp: Path,
        field_shape,
        dtype: str,
        capacity: int,
        meta: Mapping[str, Any],
        observable: str,
        counters: tuple[str, ...] = (),
    ) -> None:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        n_chains = int(field_shape[0])
        group.create_array(
            "fields",
            shape=(capacity, *field_shape),
            chunks=(1, *field_shape),
            dtype=dtype,
            compressors=_codecs(),
            config=_CONFIG,
            fill_value=0,
            dimension_names=("config", "chain", *[f"axis{i}" for i in range(len(field_shape) - 1)]),
        )
        records = record_layout(observable, counters)
        for name, (dt, per_chain) in records.items():
            shape = (capacity, n_chains) if per_chain else (capacity,)
            group.create_array(
                name,
                shape=shape,
                chunks=(BLOCK, n_chains) if per_chain else (BLOCK,),
                dtype=dt,
                compressors=_codecs(),
                config=_CONFIG,
                fill_value=0,
            )
        group.require_group("checkpoint")
        group.attrs.update(
            {
                "lqcdml": {
                    **dict(meta),
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "records": list(records),
                    "field_shape": [int(x) for x in field_shape],
                    "field_dtype": str(np.dtype(dtype)),
                },
                "n_committed": 0,
            }
        )

    @classmethod
    def open(cls, path: str | os.PathLike, mode: Literal["r", "r+"] = "r") -> EnsembleStore:
        """Open an existing store (``mode`` ``"r"`` or ``"r+"``)."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"store {str(path)!r} does not exist")
        if not (path / "zarr.json").is_file():
            raise StoreError(f"{str(path)!r} is not a Zarr store (no zarr.json); not an lqcdml ensemble")
        try:
            group = zarr.open_group(str(path), mode=mode, zarr_format=3)
        except PermissionError as exc:
            raise StoreError(
                f"store {str(path)!r} cannot be opened for {'writing' if mode != 'r' else 'reading'}: "
                f"{exc.strerror or exc}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - any reader failure means "not ours"
            raise StoreError(f"{str(path)!r} could not be opened as a Zarr v3 group: {exc}") from None
        info = group.attrs.get("lqcdml")
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise StoreError(f"{str(path)!r} is a Zarr store but not an lqcdml ensemble store")
        if info.get("format_version") not in READ_VERSIONS:
            raise StoreError(
                f"{str(path)!r} has store format version {info.get('format_version')!r}; "
                f"this lqcdml reads versions {', '.join(map(str, READ_VERSIONS))}"
            )
        try:
            return cls(group, path)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - damaged bookkeeping in any other way
            raise StoreDamage(f"store {str(path)!r} is damaged ({exc.__class__.__name__}: {exc})") from None

    # --- reading -------------------------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """The ``lqcdml`` attributes (as read when the store was opened)."""
        return dict(self._meta)

    @property
    def n_committed(self) -> int:
        """Committed configurations (as of opening, or of this writer's last commit)."""
        return self._n_committed

    @property
    def capacity(self) -> int:
        return int(self._arrays["fields"].shape[0])

    @property
    def field_shape(self) -> tuple[int, ...]:
        return tuple(self._arrays["fields"].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self._arrays["fields"].dtype

    def _check_index(self, index: int) -> int:
        n = self.n_committed
        if not -n <= index < n:
            raise IndexError(f"configuration {index} of {str(self.path)!r}: only {n} are committed")
        return index % n

    def read_fields(self, index: int) -> np.ndarray:
        """Committed configuration ``index`` (all chains), ``[B, ...]``."""
        i = self._check_index(index)
        chunk = self._field_chunk(i)
        if not chunk.is_file():  # zarr would return the fill value for a missing chunk
            raise StoreDamage(
                f"configuration {i} of {str(self.path)!r} is missing its data chunk ({chunk.name} "
                "deleted or never written); the other configurations are unaffected"
            )
        try:
            fields = cast(np.ndarray, self._arrays["fields"][i])  # zarr reads numpy arrays
        except Exception as exc:  # noqa: BLE001 - codec and checksum failures
            raise StoreDamage(
                f"configuration {i} of {str(self.path)!r} is corrupted and cannot be read "
                f"({exc.__class__.__name__}: {exc}); the other configurations are unaffected"
            ) from None
        digests = self._committed_digests()
        if digests is not None and int(digests[i]) != self.digest_of(fields, i):
            raise StoreDamage(
                f"configuration {i} of {str(self.path)!r} fails its content digest: its fields were not "
                "committed at this index of this chain (swapped, copied from another store, or rewritten)"
            )
        return fields

    def _committed_digests(self) -> np.ndarray | None:
        """The content digests of the committed configurations (None for format 1 stores)."""
        if DIGEST not in self.record_names:
            return None
        if self._digests is None or len(self._digests) != self.n_committed:
            self._digests = self.read_records(DIGEST)
        return self._digests

    @property
    def record_names(self) -> list[str]:
        return list(self._meta["records"])

    @property
    def format_version(self) -> int:
        return int(self._meta["format_version"])

    @property
    def chain_id(self) -> str:
        """What the content digests bind a configuration to: the chain hash and the replica."""
        return f"{self._meta.get('config_hash')}|{self._meta.get('replica')}"

    def digest_of(self, fields: np.ndarray, index: int) -> int:
        """The content digest configuration ``index`` must have, given its fields."""
        return content_digest(np.asarray(fields, dtype=self.dtype), self.chain_id, index)

    def read_records(self, name: str) -> np.ndarray:
        """Per-configuration array ``name`` over the committed configurations."""
        if name not in self.record_names:
            raise KeyError(f"record {name!r}; allowed: {', '.join(self.record_names)}")
        arr = self._arrays[name]
        lost = self._lost_record_blocks(name)  # zarr would read a lost chunk as zeros
        if lost:
            raise StoreDamage(
                f"record {name!r} of {str(self.path)!r} has lost chunk(s) {lost} "
                f"({self._block_range(name, lost)}); the store is damaged"
            )
        try:
            return cast(np.ndarray, arr[: self.n_committed])
        except Exception as exc:  # noqa: BLE001 - codec and checksum failures
            raise StoreDamage(
                f"record {name!r} is corrupted in {str(self.path)!r} ({exc.__class__.__name__}: {exc})"
            ) from None

    def checkpoint(self) -> dict[str, Any] | None:
        """The chain state of the last commit (``None`` before the first)."""
        n = self.n_committed
        if n == 0:
            return None
        if self._checkpoint is not None and self._checkpoint[0] == n:
            return self._checkpoint[1]
        self._checkpoint = (n, self._read_checkpoint(n))
        return self._checkpoint[1]

    def _read_checkpoint(self, n: int) -> dict[str, Any]:
        where = str(self.path)
        try:
            slot = _group(_group(self._group, "checkpoint"), f"slot{n % 2}")
        except KeyError:
            raise StoreDamage(f"store {where!r}: checkpoint slot{n % 2} of commit {n} is missing") from None
        if slot.attrs.get("n") != n:
            raise StoreDamage(
                f"store {where!r}: checkpoint slot{n % 2} belongs to commit {slot.attrs.get('n')}, "
                f"expected {n}: the store is damaged"
            )
        if not isinstance(slot.attrs.get("trajectory"), int):
            raise StoreDamage(f"store {where!r}: checkpoint slot{n % 2} has no trajectory counter; damaged")
        arrays: dict[str, np.ndarray] = {}
        for key in slot.array_keys():
            what = f"store {where!r}: checkpoint array {key!r} (slot{n % 2})"
            try:
                arr = _array(slot, key)
                chunk = self.path / "checkpoint" / f"slot{n % 2}" / key / "c" / Path(*["0"] * arr.ndim)
                if not chunk.is_file():  # zarr would return the fill value for a missing chunk
                    raise StoreDamage(f"{what} has lost its data chunk")
                arrays[key] = cast(np.ndarray, arr[...])
            except StoreDamage:
                raise
            except Exception as exc:  # noqa: BLE001 - metadata, codec and checksum failures
                raise StoreDamage(f"{what} is corrupted ({exc.__class__.__name__}: {exc})") from None
        if self._meta.get("chain_state", True):
            problem = _checkpoint_problem(arrays, self.field_shape[0])
            if problem:
                raise StoreDamage(f"store {where!r}: checkpoint slot{n % 2}: {problem}")
        return {"arrays": arrays, "attrs": dict(slot.attrs)}

    def interrupted_resize(self) -> bool:
        """Whether the arrays differ in capacity (a resize killed between arrays; a writer
        repairs it with ``finish_resize``, committed data untouched)."""
        return len({arr.shape[0] for arr in self._arrays.values()}) > 1

    def structural_problems(self, checkpoint: bool = True, allow_resize: bool = False) -> list[str]:
        """What resume and measurement rely on, checked without reading every chunk: the
        arrays' metadata, all arrays of one capacity (no half-finished resize, unless
        ``allow_resize``: a writer finishes it), the data chunk of every committed
        configuration and every record block present, the checkpoint slot of the last
        commit complete and consistent with the records (unless ``checkpoint`` is false:
        a reader of the configurations does not need it)."""
        where, n = str(self.path), self.n_committed
        out = self.metadata_problems()
        capacities = {name: arr.shape[0] for name, arr in self._arrays.items()}
        if self.interrupted_resize() and not allow_resize:
            out.append(f"store {where!r}: arrays of different capacity {capacities} (a resize was interrupted)")
        n_chains = self.field_shape[0]
        for name in self.record_names:
            shape = self._arrays[name].shape
            if len(shape) == 2 and shape[1] != n_chains:
                out.append(f"store {where!r}: record {name!r} has {shape[1]} chains, the fields {n_chains}")
        missing = [i for i in range(n) if not self._field_chunk(i).is_file()]
        if missing:
            out.append(
                f"store {where!r}: configurations {missing[:10]}{'...' if len(missing) > 10 else ''} "
                "have lost their data chunk"
            )
        for name in self.record_names:
            try:  # the records are small: read through their checksums, lost chunks refused
                self.read_records(name)
            except StoreError as exc:
                out.append(str(exc))
        if n and checkpoint:
            try:
                ckpt = self.checkpoint()
                assert ckpt is not None  # n > 0
                traj = self.read_records("trajectory")[n - 1]
                if int(traj) != ckpt["attrs"]["trajectory"]:
                    out.append(
                        f"store {where!r}: checkpoint trajectory {ckpt['attrs']['trajectory']} but record "
                        f"trajectory[{n - 1}] = {int(traj)}"
                    )
            except StoreError as exc:
                out.append(str(exc))
        return out

    def metadata_problems(self) -> list[str]:
        """Each array's metadata against what ``create`` writes: codecs (zstd and the crc32c
        checksum), data type, chunking; the field shape and dtype the attributes record;
        and no array on disk that the records list leaves out."""
        where, out = str(self.path), []
        n_chains = self.field_shape[0] if self.field_shape else None
        for name, arr in self._arrays.items():
            codecs = tuple(c.to_dict()["name"] for c in getattr(arr.metadata, "codecs", ()))  # v3 metadata
            if codecs != CODECS:
                out.append(f"store {where!r}: array {name!r} has codecs {list(codecs)}; written with {list(CODECS)}")
            if name == "fields":
                dtype = self._meta.get("field_dtype")
                if dtype is not None and str(arr.dtype) != dtype:
                    out.append(f"store {where!r}: fields of data type {arr.dtype}; the store was written with {dtype}")
                shape = self._meta.get("field_shape")
                if shape is not None and list(arr.shape[1:]) != list(shape):
                    out.append(
                        f"store {where!r}: fields of shape {list(arr.shape[1:])}; the store was written with {shape}"
                    )
                if tuple(arr.chunks) != (1, *arr.shape[1:]):
                    out.append(f"store {where!r}: fields chunked {list(arr.chunks)}; written one configuration a chunk")
                continue
            per_chain = arr.ndim == 2
            wanted = "float64" if per_chain else ("uint64" if name == DIGEST else "int64")
            chunks = (BLOCK, n_chains) if per_chain else (BLOCK,)
            if str(arr.dtype) != wanted or arr.ndim not in (1, 2) or tuple(arr.chunks) != chunks:
                out.append(
                    f"store {where!r}: record {name!r} of data type {arr.dtype}, chunks {list(arr.chunks)}; "
                    f"written as {wanted} in chunks {list(chunks)}"
                )
        listed = {"fields", *self.record_names}
        unlisted = sorted(set(self._group.array_keys()) - listed)
        if unlisted:
            out.append(
                f"store {where!r}: array(s) {unlisted} on disk are missing from its records list {self.record_names}"
            )
        if self.format_version >= 2 and DIGEST not in self.record_names:
            out.append(f"store {where!r}: its records list {self.record_names} lacks {DIGEST!r} (format 2)")
        return out

    def _lost_record_blocks(self, name: str) -> list[int]:
        """Chunks (blocks of configurations) of record ``name`` missing below ``n_committed``."""
        arr = self._arrays[name]
        block, suffix = arr.chunks[0], ("0",) * (arr.ndim - 1)
        return [
            b
            for b in range((self.n_committed + block - 1) // block)
            if not (self.path / name / "c" / str(b)).joinpath(*suffix).is_file()
        ]

    def _block_range(self, name: str, blocks: list[int]) -> str:
        block = self._arrays[name].chunks[0]
        return f"configurations {blocks[0] * block}..{min(self.n_committed, (blocks[-1] + 1) * block) - 1}"

    def _field_chunk(self, index: int) -> Path:
        return self.path / "fields" / "c" / str(index) / Path(*["0"] * len(self.field_shape))

    # --- writing -------------------------------------------------------------------
    def resize(self, capacity: int) -> None:
        """Grow every per-configuration array to ``capacity`` (never below ``n_committed``)."""
        if capacity < self.n_committed:
            raise StoreError(
                f"capacity {capacity} of {str(self.path)!r} is below the {self.n_committed} committed configurations"
            )
        for arr in self._arrays.values():
            if arr.shape[0] != capacity:
                arr.resize((capacity, *arr.shape[1:]))

    def finish_resize(self) -> int | None:
        """Complete a resize that was interrupted between arrays (a kill or a full disk
        while growing them one by one): every array gets the largest capacity. The
        committed data is untouched either way. Returns the capacity, or None if the
        arrays already agreed."""
        capacities = {arr.shape[0] for arr in self._arrays.values()}
        if len(capacities) == 1:
            return None
        if min(capacities) < self.n_committed:
            raise StoreDamage(
                f"store {str(self.path)!r}: an array shorter ({min(capacities)}) than the "
                f"{self.n_committed} committed configurations; the store is damaged"
            )
        self.resize(max(capacities))
        return max(capacities)

    def commit(
        self,
        index: int,
        fields: np.ndarray,
        records: Mapping[str, Any],
        checkpoint_arrays: Mapping[str, np.ndarray],
        checkpoint_attrs: Mapping[str, Any],
    ) -> None:
        """Write configuration ``index`` (must be ``n_committed``) and commit it."""
        n = self.n_committed
        if index != n:
            raise StoreError(f"commit of configuration {index} to {str(self.path)!r}: next is {n}")
        if index >= self.capacity:
            raise StoreError(f"configuration {index} exceeds the capacity {self.capacity}; resize first")
        if tuple(fields.shape) != self.field_shape:
            raise StoreError(f"fields of shape {tuple(fields.shape)}; the store holds {self.field_shape}")
        if DIGEST in self.record_names:
            records = {**records, DIGEST: np.uint64(self.digest_of(fields, index))}
        missing = set(self.record_names) - set(records)
        if missing:
            raise StoreError(f"commit to {str(self.path)!r} lacks records {sorted(missing)}")
        writes: list[tuple[zarr.Array, Any, np.ndarray]] = [(self._arrays["fields"], index, fields)]
        writes += [(self._arrays[name], index, np.asarray(records[name])) for name in self.record_names]
        slot_name = f"slot{(index + 1) % 2}"
        if slot_name not in self._slots:
            self._slots[slot_name] = _group(self._group, "checkpoint").require_group(slot_name)
        slot = self._slots[slot_name]
        for key, value in checkpoint_arrays.items():
            value = np.asarray(value)
            cache_key = f"{slot_name}/{key}"
            arr = self._slot_arrays.get(cache_key)
            if arr is None and key in slot:
                arr = _array(slot, key).with_config(_CONFIG)
            if arr is None or arr.shape != value.shape or arr.dtype != value.dtype:
                arr = slot.create_array(
                    key,
                    shape=value.shape,
                    dtype=value.dtype,
                    chunks=value.shape,
                    compressors=_codecs(),
                    overwrite=True,
                    config=_CONFIG,
                )
            self._slot_arrays[cache_key] = arr
            writes.append((arr, ..., value))
        # the data and the checkpoint first, then the slot's and the store's counters, in this order
        _write_together(writes)
        slot.attrs.update({**dict(checkpoint_attrs), "n": index + 1})
        self._group.attrs["n_committed"] = index + 1
        self._n_committed = index + 1

    def clean_partial_files(self) -> int:
        """Remove ``*.partial`` leftovers of writes that were killed; returns how many."""
        count = 0
        for leftover in self.path.rglob("*.partial"):
            leftover.unlink(missing_ok=True)
            count += 1
        return count
