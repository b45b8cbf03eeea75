import numpy as np
import pytest
import xarray as xr

from lqcdml.analysis import dataarray_to_obs, estimate, estimate_dataarray
from lqcdml.store import StoreError, combine_replicas, read_observables, write_observables

from ..helpers import count_zarr_writes, full_disk_at_write


def _dataset(replicas, configs, seed=0):
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            "plaquette": (("config", "replica"), rng.normal(size=(len(configs), len(replicas)))),
            "correlator": (("config", "replica", "t"), rng.normal(size=(len(configs), len(replicas), 4))),
        },
        coords={"config": configs, "replica": replicas, "t": np.arange(4)},
        attrs={"ensemble": "ens", "config_hash": "h"},
    )


def test_round_trip_and_replace(tmp_path):
    ds = _dataset([1, 2], np.arange(1, 11))
    write_observables(ds, tmp_path / "o.zarr")
    back = read_observables(tmp_path / "o.zarr")
    xr.testing.assert_identical(back, ds)
    ds2 = _dataset([1, 2], np.arange(1, 6), seed=1)
    write_observables(ds2, tmp_path / "o.zarr")  # replaced whole
    xr.testing.assert_identical(read_observables(tmp_path / "o.zarr"), ds2)
    with pytest.raises(StoreError, match="does not exist or is not Zarr"):
        read_observables(tmp_path / "none.zarr")


def test_pyerrors_conversion_names_replicas_and_uses_config_indices_as_idl():
    a = _dataset([1, 2], np.arange(2, 42, 2))  # gapped: every second trajectory
    b = _dataset([3], np.arange(1, 31), seed=3)  # a replica of a different length
    ds = combine_replicas([a, b])
    obs = dataarray_to_obs(ds["plaquette"], "ens")
    assert sorted(obs.names) == ["ens|r01", "ens|r02", "ens|r03"]
    assert list(obs.idl["ens|r01"]) == list(range(2, 42, 2))
    assert list(obs.idl["ens|r03"]) == list(range(1, 31))
    assert obs.N == 20 + 20 + 30
    values = np.concatenate([ds["plaquette"].sel(replica=r).dropna("config").values for r in (1, 2, 3)])
    assert abs(obs.value - values.mean()) < 1e-12


def test_dataarray_estimate_agrees_with_plain_array_estimate():
    ds = _dataset([1, 2, 3], np.arange(1, 201))
    a = estimate_dataarray(ds["plaquette"], "ens")
    b = estimate(ds["plaquette"].values, name="ens")
    assert abs(a.value - b.value) < 1e-14 and abs(a.error - b.error) < 1e-12


def test_a_write_failing_while_other_writes_are_in_flight_keeps_the_old_store_and_leaves_nothing(tmp_path, monkeypatch):
    old, new = _dataset([1, 2], np.arange(1, 6)), _dataset([1, 2], np.arange(1, 11), seed=1)
    write_observables(old, tmp_path / "o.zarr")
    n_writes = count_zarr_writes(monkeypatch, lambda: write_observables(new, tmp_path / "count.zarr"))
    assert n_writes > 2
    for fail_at in range(n_writes):
        full_disk_at_write(monkeypatch, fail_at, lambda: write_observables(new, tmp_path / "o.zarr"))
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("o.")) == ["o.zarr"]
        xr.testing.assert_identical(read_observables(tmp_path / "o.zarr"), old)
