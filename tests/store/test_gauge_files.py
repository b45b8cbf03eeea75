"""NERSC and ILDG files: round trips, byte layout, checksum and plaquette checks."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from lqcdml.lattice import SU, make_generators
from lqcdml.store import GaugeFileError, read_ildg, read_nersc, write_ildg, write_nersc
from lqcdml.store.gauge_layout import mean_plaquette
from lqcdml.store.ildg import scidac_checksum
from lqcdml.store.lime import read_lime


def _links(n, shape=(4, 2, 2, 4), seed=0):
    """[4, T, X, Y, Z, N, N] with distinct extents, far from the identity."""
    return SU(n).near_identity(make_generators(seed, 1), (4, *shape), 0.6)[0].numpy()


def _data_offset(raw: bytes) -> int:
    return raw.index(b"END_HEADER\n") + len(b"END_HEADER\n")


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("precision", ["double", "single"])
@pytest.mark.parametrize("two_rows", [False, True])
def test_nersc_round_trips(n, precision, two_rows, tmp_path):
    u = _links(n)
    write_nersc(tmp_path / "a", u, precision, two_rows, sequence_number=7)
    v, header = read_nersc(tmp_path / "a")
    tol = 0 if (precision == "double" and not two_rows) else (1e-14 if precision == "double" else 1e-6)
    assert np.abs(v - u).max() <= tol
    # file -> links -> file: the stored numbers and the checksum are bit exact
    write_nersc(tmp_path / "b", v, precision, two_rows, sequence_number=7)
    a, b = (tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()
    assert a[_data_offset(a) :] == b[_data_offset(b) :]
    assert read_nersc(tmp_path / "b")[1]["CHECKSUM"] == header["CHECKSUM"]
    assert abs(float(header["PLAQUETTE"]) - mean_plaquette(u)) < 1e-12


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("precision", [64, 32])
def test_ildg_round_trips_bit_exact(n, precision, tmp_path):
    u = _links(n, seed=1)
    write_ildg(tmp_path / "a.lime", u, precision)
    v, info = read_ildg(tmp_path / "a.lime")
    assert info["checksum"] == "verified" and info["lattice"] == [2, 2, 4, 4]
    assert np.abs(v - u).max() <= (0 if precision == 64 else 1e-6)
    write_ildg(tmp_path / "b.lime", v, precision)
    assert (tmp_path / "a.lime").read_bytes() == (tmp_path / "b.lime").read_bytes()


def test_nersc_byte_layout_follows_the_documented_site_and_direction_order(tmp_path):
    """One marked link: U_z at (t, x, y, z) = (3, 1, 0, 2) sits at site rank x + X(y + Y(z + Z t)), mu = 2."""
    T, X, Y, Z = 4, 2, 2, 4
    u = np.broadcast_to(np.eye(3, dtype=complex), (4, T, X, Y, Z, 3, 3)).copy()
    mark = SU(3).near_identity(make_generators(2, 1), (), 0.7)[0].numpy()
    u[3, 3, 1, 0, 2] = mark  # our direction 3 = z
    write_nersc(tmp_path / "f", u)
    raw = (tmp_path / "f").read_bytes()
    rank = 1 + X * (0 + Y * (2 + Z * 3))
    start = _data_offset(raw) + (rank * 4 + 2) * 18 * 8
    values = struct.unpack(">18d", raw[start : start + 144])
    stored = np.array(values[0::2]) + 1j * np.array(values[1::2])
    assert np.array_equal(stored.reshape(3, 3), mark)
    # the checksum is the 32-bit word sum of the data
    words = np.frombuffer(raw[_data_offset(raw) :], dtype=">u4").astype(np.uint64)
    # IEEE64BIG: each double's two big-endian words; the sum does not depend on the split order
    assert int(words.sum() % 2**32) == int(read_nersc(tmp_path / "f")[1]["CHECKSUM"], 16)


def test_ildg_layout_and_scidac_checksum_from_first_principles(tmp_path):
    T, X, Y, Z = 4, 2, 2, 4
    u = _links(3, (T, X, Y, Z), seed=3)
    write_ildg(tmp_path / "f.lime", u)
    records = {r.type: r.data for r in read_lime(tmp_path / "f.lime")}
    data = records["ildg-binary-data"]
    site = 4 * 9 * 2 * 8
    # site rank 5 = (x=1, y=0, z=1, t=0): its x-link is our direction 1
    chunk = np.frombuffer(data[5 * site : 5 * site + 144], dtype=">f8")
    assert np.array_equal(chunk[0::2] + 1j * chunk[1::2], u[1, 0, 1, 0, 1].reshape(-1))
    suma = sumb = 0
    for r in range(T * X * Y * Z):
        crc = zlib.crc32(data[r * site : (r + 1) * site])
        a, b = r % 29, r % 31
        suma ^= ((crc << a) | (crc >> (32 - a))) & 0xFFFFFFFF if a else crc
        sumb ^= ((crc << b) | (crc >> (32 - b))) & 0xFFFFFFFF if b else crc
    assert f"<suma>{suma:08x}</suma><sumb>{sumb:08x}</sumb>" in records["scidac-checksum"].decode()
    assert scidac_checksum(np.frombuffer(data, np.uint8).reshape(-1, site)) == (suma, sumb)


def test_a_flipped_bit_is_a_checksum_error_with_both_values(tmp_path):
    write_nersc(tmp_path / "f", _links(3))
    raw = bytearray((tmp_path / "f").read_bytes())
    raw[_data_offset(raw) + 1000] ^= 0x10
    (tmp_path / "g").write_bytes(raw)
    with pytest.raises(GaugeFileError, match=r"g: checksum mismatch: header [0-9a-f]{8}, data [0-9a-f]{8}"):
        read_nersc(tmp_path / "g")
    write_ildg(tmp_path / "f.lime", _links(3))
    raw = bytearray((tmp_path / "f.lime").read_bytes())
    raw[144 * 2 + 400] ^= 0x01  # inside the binary data (after two record headers and the format XML)
    (tmp_path / "g.lime").write_bytes(raw)
    with pytest.raises(GaugeFileError, match=r"g.lime: SciDAC checksum mismatch: record suma [0-9a-f]{8}"):
        read_ildg(tmp_path / "g.lime")


def test_a_wrong_header_plaquette_is_an_error_with_both_values(tmp_path):
    u = _links(3)
    write_nersc(tmp_path / "f", u)
    text = (tmp_path / "f").read_bytes()
    true = f"{mean_plaquette(u):.15g}".encode()
    (tmp_path / "g").write_bytes(text.replace(b"PLAQUETTE = " + true, b"PLAQUETTE = 0.123456"))
    with pytest.raises(
        GaugeFileError, match=rf"g: plaquette mismatch: header 0.123456, recomputed {true.decode()[:8]}"
    ):
        read_nersc(tmp_path / "g")


@pytest.mark.parametrize("cut", [10, 300, -8])
def test_truncated_files_are_errors(cut, tmp_path):
    write_nersc(tmp_path / "f", _links(2))
    raw = (tmp_path / "f").read_bytes()
    (tmp_path / "g").write_bytes(raw[:cut])
    with pytest.raises(GaugeFileError, match="g: "):
        read_nersc(tmp_path / "g")
    write_ildg(tmp_path / "f.lime", _links(2))
    raw = (tmp_path / "f.lime").read_bytes()
    (tmp_path / "g.lime").write_bytes(raw[:cut])
    with pytest.raises(GaugeFileError, match="g.lime: "):
        read_ildg(tmp_path / "g.lime")


FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.mark.parametrize(
    "name,plaquette",
    [
        ("su3_t4x2x2x2.nersc", 0.5366453789349408),
        ("su3_t4x2x2x2_tworow_single.nersc", 0.5366453801795951),
        ("su2_t4x2x2x2.nersc", 0.6934131918239324),
        ("su3_t4x2x2x2.lime", 0.5366453789349408),
        ("su2_t4x2x2x2_single.lime", 0.6934131871225978),
    ],
)
def test_committed_fixtures_read_and_rewrite_to_the_same_bytes(name, plaquette, tmp_path):
    """Files written by an earlier version: a change of byte layout breaks this test."""
    path = FIXTURES / name
    if name.endswith(".lime"):
        links, info = read_ildg(path)
        write_ildg(tmp_path / name, links, info["precision"])
        assert (tmp_path / name).read_bytes() == path.read_bytes()
    else:
        links, header = read_nersc(path)
        write_nersc(
            tmp_path / name,
            links,
            "double" if "64" in header["FLOATING_POINT"] else "single",
            header["DATATYPE"] in ("4D_SU3_GAUGE", "4D_SU2_GAUGE"),
            header["ENSEMBLE_ID"],
            int(header["SEQUENCE_NUMBER"]),
        )
        a, b = path.read_bytes(), (tmp_path / name).read_bytes()
        assert a[_data_offset(a) :] == b[_data_offset(b) :]
        assert read_nersc(tmp_path / name)[1]["CHECKSUM"] == header["CHECKSUM"]
    assert abs(mean_plaquette(links) - plaquette) < 1e-14
