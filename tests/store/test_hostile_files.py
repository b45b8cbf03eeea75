"""Property-based: random, truncated, mutated and oversized gauge files end in a
GaugeFileError (naming the file) or a valid result; never another exception or a hang."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lqcdml.lattice import SU, make_generators
from lqcdml.store import GaugeFileError, read_ildg, read_nersc, write_ildg, write_nersc

from ..conftest import count_case

SETTINGS = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    base = tmp_path_factory.mktemp("valid")
    u = SU(3).near_identity(make_generators(0, 1), (4, 2, 2, 2, 2), 0.5)[0].numpy()
    write_nersc(base / "a.nersc", u)
    write_ildg(base / "a.lime", u)
    return (base / "a.nersc").read_bytes(), (base / "a.lime").read_bytes()


def _read_all(path, name):
    count_case(name)
    for reader in (read_nersc, read_ildg):
        try:
            links, _ = reader(path)
        except GaugeFileError as exc:
            assert str(path) in str(exc) or path.name in str(exc)
        else:  # a valid result: SU(N) links
            n = links.shape[-1]
            assert np.allclose(np.conj(np.swapaxes(links, -1, -2)) @ links, np.eye(n), atol=1e-5)


@SETTINGS
@given(data=st.binary(max_size=4096))
def test_random_bytes(tmp_path, data):
    path = tmp_path / "random.bin"
    path.write_bytes(data)
    _read_all(path, "gauge files: random bytes")


@SETTINGS
@given(
    which=st.sampled_from([0, 1]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=4),
    insert=st.binary(max_size=16),
)
def test_truncated_and_mutated_valid_files(tmp_path, valid, which, cut, flips, insert):
    raw = bytearray(valid[which])
    for pos, bit in flips:
        raw[int(pos * (len(raw) - 1))] ^= 1 << bit
    at = int(cut * len(raw))
    raw = raw[:at] + insert + raw[at:] if insert else raw[:at]
    path = tmp_path / "mutated"
    path.write_bytes(bytes(raw))
    _read_all(path, "gauge files: truncated/mutated")


@SETTINGS
@given(
    dims=st.lists(st.integers(-5, 2**40), min_size=4, max_size=4),
    datatype=st.sampled_from(["4D_SU3_GAUGE_3x3", "4D_SU3_GAUGE", "4D_SU2_GAUGE", "junk"]),
    fp=st.sampled_from(["IEEE64BIG", "IEEE32LITTLE", "IEEE128"]),
    checksum=st.text(max_size=10),
)
def test_oversized_and_inconsistent_nersc_headers(tmp_path, valid, dims, datatype, fp, checksum):
    header = (
        "BEGIN_HEADER\n"
        + "".join(f"DIMENSION_{i + 1} = {d}\n" for i, d in enumerate(dims))
        + f"DATATYPE = {datatype}\nFLOATING_POINT = {fp}\nCHECKSUM = {checksum}\nEND_HEADER\n"
    )
    path = tmp_path / "header.nersc"
    path.write_bytes(header.encode("utf-8", "replace") + valid[0][-2000:])
    _read_all(path, "gauge files: hostile NERSC headers")


@SETTINGS
@given(length=st.integers(0, 2**63 - 1), kind=st.binary(min_size=0, max_size=128))
def test_lime_records_claiming_any_length(tmp_path, length, kind):
    import struct

    head = struct.pack(">IHHQ128s", 0x456789AB, 1, 0, length, kind.ljust(128, b"\0"))
    path = tmp_path / "claim.lime"
    path.write_bytes(head + b"x" * 64)
    _read_all(path, "gauge files: LIME length claims")
