import json

import numpy as np
import pytest
import zarr

from lqcdml.store import EnsembleStore, StoreError

from ..helpers import count_zarr_writes, full_disk_at_write


def _make(path, capacity=5, n_chains=2):
    return EnsembleStore.create(
        path,
        field_shape=(n_chains, 2, 3, 3),
        dtype="float64",
        capacity=capacity,
        meta={"ensemble": "e", "replica": 1, "config_hash": "abc"},
        observable="plaquette",
    )


def _commit(store, i, rng):
    fields = rng.normal(size=store.field_shape)
    records = {
        "trajectory": 10 * (i + 1),
        "accepted": np.array([1.0, 0.0]),
        "delta_H": rng.normal(size=2),
        "plaquette": rng.normal(size=2),
    }
    ckpt = {
        "rng_states": rng.integers(0, 255, size=(2, 16), dtype=np.uint8),
        "n_accepted": np.array([i, i + 1], dtype=np.int64),
    }
    store.commit(i, fields, records, ckpt, {"trajectory": 10 * (i + 1)})
    return fields, records, ckpt


def test_round_trip_of_fields_records_and_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    store = _make(tmp_path / "e.zarr")
    written = [_commit(store, i, rng) for i in range(3)]
    reopened = EnsembleStore.open(tmp_path / "e.zarr")
    assert reopened.n_committed == 3 and reopened.capacity == 5
    for i, (fields, _records, _) in enumerate(written):
        assert np.array_equal(reopened.read_fields(i), fields)
    assert np.array_equal(reopened.read_records("trajectory"), [10, 20, 30])
    assert np.array_equal(reopened.read_records("delta_H")[2], written[2][1]["delta_H"])
    ckpt = reopened.checkpoint()
    assert ckpt["attrs"]["trajectory"] == 30 and ckpt["attrs"]["n"] == 3
    assert np.array_equal(ckpt["arrays"]["rng_states"], written[2][2]["rng_states"])
    assert np.array_equal(ckpt["arrays"]["n_accepted"], [2, 3])
    assert reopened.meta["ensemble"] == "e" and reopened.record_names[-2:] == ["plaquette", "digest"]


def test_readers_see_only_committed_configurations(tmp_path):
    rng = np.random.default_rng(1)
    store = _make(tmp_path / "e.zarr")
    _commit(store, 0, rng)
    with pytest.raises(IndexError, match="only 1 are committed"):
        store.read_fields(1)
    assert store.read_records("accepted").shape == (1, 2)


def test_uncommitted_data_is_invisible_after_an_interrupted_commit(tmp_path):
    """Data written without the commit counter (a kill before the last write) is not seen."""
    rng = np.random.default_rng(2)
    store = _make(tmp_path / "e.zarr")
    _commit(store, 0, rng)
    _commit(store, 1, rng)
    group = zarr.open_group(str(tmp_path / "e.zarr"), mode="r+")
    group["fields"][2] = np.ones(store.field_shape)  # data of configuration 2, never committed
    group["checkpoint"]["slot1"].attrs["n"] = 3  # and half of its checkpoint
    reopened = EnsembleStore.open(tmp_path / "e.zarr")
    assert reopened.n_committed == 2
    assert reopened.checkpoint()["attrs"]["n"] == 2  # slot 0, intact
    assert reopened.read_records("trajectory").tolist() == [10, 20]


def test_commit_order_capacity_and_resize(tmp_path):
    rng = np.random.default_rng(3)
    store = _make(tmp_path / "e.zarr", capacity=2)
    with pytest.raises(StoreError, match="next is 0"):
        _commit(store, 1, rng)
    _commit(store, 0, rng)
    _commit(store, 1, rng)
    with pytest.raises(StoreError, match="exceeds the capacity 2"):
        _commit(store, 2, rng)
    store.resize(4)
    _commit(store, 2, rng)
    assert EnsembleStore.open(tmp_path / "e.zarr").capacity == 4
    with pytest.raises(StoreError, match="below the 3 committed"):
        store.resize(2)


def test_fields_are_checksummed_and_compressed(tmp_path):
    store = _make(tmp_path / "e.zarr")
    meta = json.loads((tmp_path / "e.zarr" / "fields" / "zarr.json").read_text())
    names = [c["name"] for c in meta["codecs"]]
    assert names == ["bytes", "zstd", "crc32c"]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"][0] == 1
    assert store.meta["format"] == "lqcdml-ensemble"


def test_missing_foreign_and_existing_paths_are_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        EnsembleStore.open(tmp_path / "nope.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(StoreError, match="not a Zarr store"):
        EnsembleStore.open(tmp_path / "plain")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w").attrs["x"] = 1
    with pytest.raises(StoreError, match="not an lqcdml ensemble store"):
        EnsembleStore.open(tmp_path / "other.zarr")
    _make(tmp_path / "e.zarr")
    with pytest.raises(StoreError, match="exists already"):
        _make(tmp_path / "e.zarr")


def test_partial_files_of_killed_writes_are_cleaned(tmp_path):
    store = _make(tmp_path / "e.zarr")
    (tmp_path / "e.zarr" / "fields" / "c.1234.partial").write_bytes(b"junk")
    assert store.clean_partial_files() == 1
    assert not list((tmp_path / "e.zarr").rglob("*.partial"))


def test_a_creation_failing_while_other_writes_are_in_flight_leaves_nothing(tmp_path, monkeypatch):
    """zarr writes an array's metadata and its parent group's concurrently: when one write
    fails, the other goes on and would recreate the removed temporary folder."""
    n_writes = count_zarr_writes(monkeypatch, lambda: _make(tmp_path / "count.zarr"))
    assert n_writes > 2
    for fail_at in range(n_writes):
        full_disk_at_write(monkeypatch, fail_at, lambda: _make(tmp_path / f"e{fail_at}.zarr"))
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f"e{fail_at}.")) == []
