"""Gauge files as other programs write them: ILDG with only the binary-data record, NERSC
datatypes in upper case, placeholder or absent checksums, links slightly off the group."""

import json

import numpy as np
import pytest

from lqcdml.cli.main import main
from lqcdml.lattice import SU, make_generators
from lqcdml.store import EnsembleStore, GaugeFileError, read_ildg, read_nersc, write_ildg, write_nersc
from lqcdml.store.ildg import Geometry
from lqcdml.store.lime import LimeRecord, read_lime, write_lime

SHAPE = (4, 4, 2, 2, 2)  # [mu, T, X, Y, Z]


def _links(seed=0, n=3):
    return SU(n).haar(make_generators(seed, 1), SHAPE).numpy()[0]


def _ildg_without(path, src, drop):
    write_ildg(src, _links())
    records = [r for r in read_lime(src) if r.type not in drop]
    records = [LimeRecord(r.type, r.data, i == 0, i == len(records) - 1) for i, r in enumerate(records)]
    write_lime(path, records)


def test_ildg_with_only_binary_data_imports_with_the_given_geometry(tmp_path, capsys):
    path = tmp_path / "bare.lime"
    _ildg_without(path, tmp_path / "full.lime", {"ildg-format"})
    with pytest.raises(GaugeFileError, match="no ildg-format record; allowed: give the geometry"):
        read_ildg(path)
    links, info = read_ildg(path, Geometry((4, 2, 2, 2), 3, 64))
    assert np.array_equal(links, _links()) and info["checksum"] == "verified" and not info["format_record"]
    with pytest.raises(GaugeFileError, match="ildg-binary-data has .* bytes"):  # checked against the record size
        read_ildg(path, Geometry((4, 2, 2, 4), 3, 64))
    with pytest.raises(GaugeFileError, match="the given geometry disagrees"):
        read_ildg(tmp_path / "full.lime", Geometry((2, 2, 2, 4), 3, 64))
    store = tmp_path / "s.zarr"
    assert main(["import", str(path), "--store", str(store), "--lattice", "4,2,2,2", "--colors", "3"]) == 0
    assert np.array_equal(EnsembleStore.open(store).read_fields(0)[0], _links())
    assert main(["import", str(path), "--store", str(tmp_path / "t.zarr")]) == 2
    assert "--lattice T,X,Y,Z --colors N --precision 64|32" in capsys.readouterr().err
    assert not (tmp_path / "t.zarr").exists()


def test_ildg_without_a_checksum_record_imports_only_unchecked(tmp_path, capsys):
    path = tmp_path / "nosum.lime"
    _ildg_without(path, tmp_path / "full.lime", {"scidac-checksum"})
    with pytest.raises(GaugeFileError, match="no scidac-checksum record.*allowed: --no-checksum"):
        read_ildg(path)
    assert main(["import", str(path), "--store", str(tmp_path / "s.zarr")]) == 2
    assert main(["import", str(path), "--store", str(tmp_path / "s.zarr"), "--no-checksum"]) == 0
    meta = EnsembleStore.open(tmp_path / "s.zarr").meta
    assert meta["checksums_checked"] is False and meta["sources"][0]["checksum"] == "not checked"


def _edit_header(path, old: bytes, new: bytes):
    raw = path.read_bytes()
    head_end = raw.index(b"END_HEADER")
    assert raw[:head_end].count(old) == 1
    path.write_bytes(raw[:head_end].replace(old, new) + raw[head_end:])


def test_nersc_datatype_in_upper_case_is_read(tmp_path):
    path = tmp_path / "upper.nersc"
    write_nersc(path, _links())
    _edit_header(path, b"4D_SU3_GAUGE_3x3", b"4D_SU3_GAUGE_3X3")
    links, header = read_nersc(path)
    assert np.array_equal(links, _links()) and header["DATATYPE"] == "4D_SU3_GAUGE_3X3"


def test_a_placeholder_nersc_checksum_imports_only_unchecked_and_the_store_says_so(tmp_path, capsys):
    path = tmp_path / "placeholder.nersc"
    header = write_nersc(path, _links())
    _edit_header(path, f"CHECKSUM = {header['CHECKSUM']}".encode(), b"CHECKSUM = ffffffff")
    with pytest.raises(GaugeFileError, match="checksum mismatch: header ffffffff"):
        read_nersc(path)
    links, header = read_nersc(path, check_checksum=False)  # plaquette and group checks still apply
    assert np.array_equal(links, _links()) and header["lqcdml_checksum"] == "not checked"
    assert main(["import", str(path), "--store", str(tmp_path / "s.zarr")]) == 2
    assert "--no-checksum" in capsys.readouterr().err
    assert main(["import", str(path), "--store", str(tmp_path / "s.zarr"), "--no-checksum"]) == 0
    meta = EnsembleStore.open(tmp_path / "s.zarr").meta
    assert meta["checksums_checked"] is False and meta["sources"][0]["checksum_checked"] is False
    # a damaged plaquette is still caught without the checksum
    bad = tmp_path / "badplaq.nersc"
    header = write_nersc(bad, _links())
    _edit_header(bad, f"PLAQUETTE = {header['PLAQUETTE']}".encode(), b"PLAQUETTE = 0.123456789")
    with pytest.raises(GaugeFileError, match="plaquette mismatch"):
        read_nersc(bad, check_checksum=False)


@pytest.mark.parametrize("fmt", ["nersc", "ildg"])
def test_links_off_the_group_are_refused_with_the_deviation_or_reprojected(fmt, tmp_path, capsys):
    off = _links() * (1 + 1e-3)
    path = tmp_path / f"off.{fmt}"
    (write_nersc if fmt == "nersc" else write_ildg)(path, off)
    with pytest.raises(GaugeFileError, match=r"not SU\(3\): max\(\|U\^dag U - 1\|, \|det U - 1\|\) = 0.00"):
        (read_nersc if fmt == "nersc" else read_ildg)(path)
    assert main(["import", str(path), "--store", str(tmp_path / "s.zarr")]) == 2
    assert "--reproject" in capsys.readouterr().err
    assert main(["import", str(path), "--store", str(tmp_path / "s.zarr"), "--reproject"]) == 0
    store = EnsembleStore.open(tmp_path / "s.zarr")
    source = store.meta["sources"][0]
    assert store.meta["reprojected"] and 2e-3 < source["group_deviation"] < 4e-3
    links = store.read_fields(0)[0]
    assert np.abs(links - _links()).max() < 1e-12  # the projection of c U is U
    assert json.loads(json.dumps(store.meta))  # JSON only
