"""Gauge-file sizes checked from the headers before any data are read; NaN-safe checks.

Huge extents, ~10.5 GB sparse files (no disk used, never read), byte-swapped data whose
group deviation is NaN and infinite links: each a one-line ``GaugeFileError`` naming the
file, with no floating-point warning (the test run turns warnings into errors).
"""

import os
import struct
import warnings

import numpy as np
import pytest

from lqcdml.store import GaugeFileError, gauge_layout, lime, read_ildg, read_nersc, write_ildg, write_nersc
from lqcdml.store.gauge_layout import within
from lqcdml.store.lime import EAGER_BYTES, MAX_RECORDS, read_lime

from . import hostile_gauge_files as hostile

MACHINE_ALLOWANCE = gauge_layout.memory_allowed


@pytest.fixture(autouse=True)
def small_machine(monkeypatch):
    """1 GiB for reading, whatever this machine has: a 10.5 GB file is refused everywhere."""
    monkeypatch.setattr(gauge_layout, "memory_allowed", lambda: 1 << 30)


def _refused(reader, path, match, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(GaugeFileError, match=match) as info:
            reader(path, **kw)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize(
    "dims,match",
    [
        ((10**22, 4, 4, 4), r"DIMENSION_1 = 10000000000000000000000; allowed: 1 <= DIMENSION_1 <= 2\^28"),
        ((4, 4, 4, -3), r"DIMENSION_4 = -3; allowed: 1 <= DIMENSION_4"),
        ((2**16,) * 4, r"= 65536x65536x65536x65536 is 18446744073709551616 sites; allowed: at most 2\^28"),
    ],
)
def test_nersc_extents_and_site_count_are_checked_as_python_integers(tmp_path, dims, match):
    _refused(read_nersc, hostile.huge_dimension_nersc(tmp_path / "huge.nersc", dims), match)


def test_a_sparse_nersc_file_too_large_for_memory_is_refused_before_reading(tmp_path):
    path = hostile.sparse_nersc(tmp_path / "big.nersc")
    assert os.stat(path).st_blocks * 512 < 1 << 20  # sparse: the test uses no disk
    message = _refused(read_nersc, path, r"needs about 88.6 GiB of memory; allowed: 1 GiB")
    assert "18350080 sites of SU(3)" in message


@pytest.mark.parametrize("checksum", [True, False])
def test_a_sparse_ildg_file_too_large_for_memory_is_refused_before_reading(tmp_path, checksum):
    path = hostile.sparse_ildg(tmp_path / "big.lime", checksum=checksum)
    _refused(read_ildg, path, r"needs about 88.6 GiB of memory; allowed: 1 GiB", check_checksum=checksum)


def test_ildg_binary_data_must_agree_with_the_geometry_before_it_is_read(tmp_path):
    path = hostile.sparse_ildg(tmp_path / "big.lime", dims=(4, 4, 4, 4))
    _refused(read_ildg, path, rf"ildg-binary-data has {hostile.BIG_BYTES} bytes; su3gauge 4x4x4x4 .* needs 147456")


def test_lime_records_are_read_lazily_and_metadata_eagerly(tmp_path):
    records = read_lime(hostile.sparse_ildg(tmp_path / "big.lime"))
    assert [r.type for r in records] == ["ildg-format", "ildg-binary-data", "scidac-checksum"]
    fmt, binary, checksum = records
    assert fmt.eager is not None and b"<lx>64</lx>" in fmt.data and checksum.eager is not None
    assert binary.eager is None and binary.length == hostile.BIG_BYTES
    assert binary.offset == 144 + len(fmt.data) + (-len(fmt.data) % 8) + 144
    too_large = rf"'ildg-binary-data' has {hostile.BIG_BYTES} bytes; allowed: at most {EAGER_BYTES}"
    with pytest.raises(GaugeFileError, match=too_large):
        binary.read(EAGER_BYTES)


def test_a_lazy_record_cut_short_after_the_headers_were_read_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(lime, "EAGER_BYTES", 1024)  # the binary record (18432 bytes) is read lazily
    write_ildg(tmp_path / "a.lime", hostile.links())
    binary = read_lime(tmp_path / "a.lime")[1]
    assert binary.eager is None and binary.length == 18432
    assert len(binary.data) == 18432
    with open(tmp_path / "a.lime", "r+b") as fh:
        fh.truncate(binary.offset + 10)
    with pytest.raises(
        GaugeFileError, match=f"'ildg-binary-data' holds 10 of its 18432 data bytes from byte {binary.offset}"
    ):
        binary.read()


def test_more_lime_records_than_allowed_is_an_error(tmp_path):
    empty = struct.pack(">IHHQ128s", 0x456789AB, 1, 0, 0, b"x".ljust(128, b"\0"))
    (tmp_path / "many.lime").write_bytes(empty * (MAX_RECORDS + 1))
    with pytest.raises(GaugeFileError, match=f"more than {MAX_RECORDS} LIME records"):
        read_lime(tmp_path / "many.lime")
    (tmp_path / "ok.lime").write_bytes(empty * MAX_RECORDS)
    assert len(read_lime(tmp_path / "ok.lime")) == MAX_RECORDS


@pytest.mark.parametrize("kw", [dict(check_checksum=False), dict(check_checksum=False, reproject=True), {}])
def test_byte_swapped_ildg_data_are_refused_nan_safely(tmp_path, kw):
    path = hostile.byte_swapped_ildg(tmp_path / "swapped.lime", checksum=not kw)
    _refused(read_ildg, path, r"links are not SU\(3\): .* = nan; allowed: 1e-05", **kw)


@pytest.mark.parametrize("two_rows", [False, True])
def test_an_infinite_nersc_link_is_refused_without_warnings(tmp_path, two_rows):
    _refused(read_nersc, hostile.inf_nersc(tmp_path / "inf.nersc", two_rows), "links hold NaN or infinite numbers")


def test_tolerance_checks_are_nan_safe():
    assert within(0.0, 1e-5) and within(1e-5, 1e-5)
    assert not within(float("nan"), 1e-5) and not within(float("inf"), 1e-5)


def test_the_memory_allowed_is_half_the_physical_memory_and_checked_before_reading(tmp_path, monkeypatch):
    assert MACHINE_ALLOWANCE() == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    u = hostile.links()
    write_nersc(tmp_path / "a.nersc", u)
    write_ildg(tmp_path / "a.lime", u)
    for path, reader in ((tmp_path / "a.nersc", read_nersc), (tmp_path / "a.lime", read_ildg)):
        monkeypatch.setattr(gauge_layout, "memory_allowed", MACHINE_ALLOWANCE)
        assert np.array_equal(reader(path)[0], u)  # small files fit
        monkeypatch.setattr(gauge_layout, "memory_allowed", lambda: 10_000)
        _refused(reader, path, r"needs about .* GiB of memory; allowed: 9.31e-06 GiB")
