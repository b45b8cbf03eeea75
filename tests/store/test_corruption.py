"""Damaged ensemble stores: each damaged configuration is reported with its index, the
rest stays readable, and ``lqcdml verify`` checks a whole store."""

import json

import numpy as np
import pytest

from lqcdml.cli.main import main
from lqcdml.store import EnsembleStore, StoreError, verify_store

from .test_ensemble_store import _commit, _make


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(1)
    s = _make(tmp_path / "e.zarr", capacity=8)
    fields = [_commit(s, i, rng)[0] for i in range(6)]
    return tmp_path / "e.zarr", fields


def _chunk(path, i):
    return path / "fields" / "c" / str(i) / "0" / "0" / "0" / "0"


def _damage(path, i, how):
    chunk = _chunk(path, i)
    raw = bytearray(chunk.read_bytes())
    if how == "bit flip":
        raw[len(raw) // 2] ^= 0x04
        chunk.write_bytes(raw)
    elif how == "truncated":
        chunk.write_bytes(raw[: len(raw) // 3])
    elif how == "half-written":  # a torn write: the first half new garbage, the rest old
        raw[: len(raw) // 2] = bytes(len(raw) // 2)
        chunk.write_bytes(raw)
    elif how == "deleted":
        chunk.unlink()


@pytest.mark.parametrize("how", ["bit flip", "truncated", "half-written", "deleted"])
def test_damaged_configuration_is_reported_with_its_index_and_the_rest_reads(store, how, capsys):
    path, fields = store
    _damage(path, 3, how)
    opened = EnsembleStore.open(path)
    with pytest.raises(StoreError, match=r"configuration 3 of .*e\.zarr"):
        opened.read_fields(3)
    for i in (0, 1, 2, 4, 5):
        assert np.array_equal(opened.read_fields(i), fields[i])
    report = verify_store(path)
    assert not report["ok"] and [b["index"] for b in report["bad"]] == [3]
    assert main(["verify", str(path)]) == 4
    assert json.loads(capsys.readouterr().out)["bad"][0]["index"] == 3


def test_verify_passes_an_intact_store_and_flags_non_finite_values(store, capsys):
    path, _ = store
    assert main(["verify", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "store": str(path),
        "n_committed": 6,
        "ok": True,
        "checked": "all configurations",
        "bad": [],
        "records": {"trajectory": "ok", "accepted": "ok", "delta_H": "ok", "plaquette": "ok", "digest": "ok"},
        "checkpoint": "ok",
        "structure": [],
        "content": "content digests checked",
    }
    s = EnsembleStore.open(path, mode="r+")
    rng = np.random.default_rng(2)
    f = rng.normal(size=s.field_shape)
    f[0, 0, 0, 0] = np.nan
    s.commit(
        6,
        f,
        {"trajectory": 70, "accepted": np.ones(2), "delta_H": np.zeros(2), "plaquette": np.zeros(2)},
        {"n_accepted": np.zeros(2, dtype=np.int64)},
        {"trajectory": 70},
    )
    report = verify_store(path)
    assert report["bad"] == [{"index": 6, "error": "non-finite values"}]


def test_a_damaged_record_chunk_is_reported_and_fields_stay_readable(store):
    path, fields = store
    chunk = next((path / "delta_H" / "c").rglob("*"))
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    chunk.write_bytes(chunk.read_bytes()[:5])
    report = verify_store(path)
    assert not report["ok"] and "corrupted" in report["records"]["delta_H"] and report["bad"] == []
    assert np.array_equal(EnsembleStore.open(path).read_fields(5), fields[5])
