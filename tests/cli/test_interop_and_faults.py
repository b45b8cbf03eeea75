"""lqcdml import / export, and numerical faults during generate."""

import json
from dataclasses import replace

import numpy as np
import torch

from lqcdml.cli.main import main
from lqcdml.lattice import SU, make_generators
from lqcdml.samplers import HMC
from lqcdml.store import EnsembleStore, write_ildg, write_nersc

from .helpers import snapshot


def _files(tmp_path, n=3, count=3):
    paths = []
    for i in range(count):
        u = SU(n).near_identity(make_generators(i, 1), (4, 4, 2, 2, 2), 0.5)[0].numpy()
        p = tmp_path / f"cfg{i}.{'nersc' if i % 2 == 0 else 'lime'}"
        (write_nersc if i % 2 == 0 else write_ildg)(p, u)
        paths.append(p)
    return paths


def test_import_export_round_trip_is_bit_exact(tmp_path, capsys):
    files = _files(tmp_path)
    assert main(["import", *map(str, files), "--store", str(tmp_path / "s.zarr")]) == 0
    store = EnsembleStore.open(tmp_path / "s.zarr")
    assert store.n_committed == 3 and store.meta["theory"]["lattice"] == [4, 2, 2, 2]
    assert [s["format"] for s in store.meta["sources"]] == ["nersc", "ildg", "nersc"]
    for fmt, ext in (("nersc", "nersc"), ("ildg", "lime")):
        out = tmp_path / fmt
        assert main(["export", str(tmp_path / "s.zarr"), "--out", str(out), "--format", fmt]) == 0
        exported = sorted(out.glob(f"*.{ext}"))
        assert len(exported) == 3
        assert main(["import", *map(str, exported), "--store", str(tmp_path / f"{fmt}.zarr")]) == 0
        again = EnsembleStore.open(tmp_path / f"{fmt}.zarr")
        for i in range(3):
            assert np.array_equal(again.read_fields(i), store.read_fields(i))
    assert main(["verify", str(tmp_path / "s.zarr")]) == 0


def test_import_of_a_damaged_file_writes_nothing(tmp_path, capsys):
    files = _files(tmp_path)
    raw = bytearray(files[2].read_bytes())
    raw[-20] ^= 0xFF
    files[2].write_bytes(raw)
    before = snapshot(tmp_path)
    assert main(["import", *map(str, files), "--store", str(tmp_path / "s.zarr")]) == 2
    err = capsys.readouterr().err
    assert "cfg2.nersc: checksum mismatch" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before


def test_export_refuses_a_store_without_4d_links(tmp_path, capsys):
    cfg = ["generate", "+experiment=ci_tiny", "--ensemble", "u1", "chain.n_configs=6", "chain.n_therm=1"]
    assert main([*cfg, "--store", str(tmp_path / "u1.zarr")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "u1.zarr"), "--out", str(tmp_path / "x"), "--format", "nersc"]) == 2
    assert "allowed: 4D SU(2) or SU(3) links" in capsys.readouterr().err


def test_non_finite_trajectories_are_rejected_logged_and_never_stored(tmp_path, capsys):
    args = [
        "generate",
        "+experiment=quickstart",
        "--ensemble",
        "phi4_2d",
        "sampler.trajectory_length=1e80",
        "sampler.n_steps=1",
        "chain.n_configs=6",
        "chain.n_therm=1",
        "chain.n_chains=2",
        "chain.replicas=1",
        "--store",
        str(tmp_path / "s.zarr"),
        "--manifest",
        str(tmp_path / "m.json"),
        "--progress",
        "lines",
    ]
    assert main(args) == 0
    err = capsys.readouterr().err
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["nonfinite_rejected"] > 0 and "non-finite delta_H in chains" in err
    store = EnsembleStore.open(tmp_path / "s.zarr")
    for i in range(store.n_committed):
        assert np.all(np.isfinite(store.read_fields(i)))
    assert np.all(store.read_records("accepted") == 0)  # every trajectory blew up


def test_links_drifting_off_the_group_are_reprojected_and_reported(tmp_path, capsys, monkeypatch):
    original = HMC.step

    def drifting(self, state):
        state, info = original(self, state)
        return replace(state, fields=state.fields * (1 + 1e-9)), info

    monkeypatch.setattr(HMC, "step", drifting)
    args = [
        "generate",
        "+experiment=ci_tiny",
        "--ensemble",
        "su2",
        "chain.n_configs=5",
        "chain.n_therm=0",
        "--store",
        str(tmp_path / "s.zarr"),
        "--manifest",
        str(tmp_path / "m.json"),
        "--progress",
        "lines",
    ]
    assert main(args) == 0
    manifest = json.loads((tmp_path / "m.json").read_text())
    assert manifest["reprojections"] == 5 and 1e-9 < manifest["max_drift"] < 1e-8
    assert "links drifted off the group by" in capsys.readouterr().err
    store = EnsembleStore.open(tmp_path / "s.zarr")
    for i in range(5):
        assert float(SU(2).deviation(torch.from_numpy(store.read_fields(i)))) < 1e-14
