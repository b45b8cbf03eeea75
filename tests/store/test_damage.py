"""Damage that resume and measurement rely on: ``lqcdml verify`` reports each case (exit 4,
the array or index named), ``generate`` refuses to extend such a store and ``measure``
refuses to read it, each with one line; nothing stored is changed."""

import json
import shutil

import numpy as np
import pytest
import zarr

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump

from ..cli.helpers import snapshot


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Replicas 1 (``s.zarr``) and 2 (``r2.zarr``) of a 2D U(1) chain of 10 configurations,
    and a 4D SU(2) chain (``su2.zarr``)."""
    root = tmp_path_factory.mktemp("damage")
    cfg = compose_experiment(
        "ci_tiny",
        ["ensembles.u1.chain.n_configs=10", "ensembles.u1.chain.n_therm=2", "ensembles.su2.chain.n_configs=7"],
    )
    for name in set(cfg.ensembles) - {"u1", "su2"}:  # a short config loads faster
        del cfg.ensembles[name]
    dump(cfg, root / "config.yaml")
    for ensemble, replica, store in (("u1", 1, "s.zarr"), ("u1", 2, "r2.zarr"), ("su2", 1, "su2.zarr")):
        assert (
            main(
                [
                    "generate",
                    "--config",
                    str(root / "config.yaml"),
                    "--ensemble",
                    ensemble,
                    "--replica",
                    str(replica),
                    "--store",
                    str(root / store),
                    "--progress",
                    "lines",
                ]
            )
            == 0
        )
    return root


def _attrs(store):
    return json.loads((store / "zarr.json").read_text())


def _set_attrs(store, change):
    data = _attrs(store)
    change(data["attributes"])
    (store / "zarr.json").write_text(json.dumps(data))


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _slot(store):
    return store / "checkpoint" / f"slot{_attrs(store)['attributes']['n_committed'] % 2}"


def _flip(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    path.write_bytes(raw)


def _field_chunk(store, i):
    """The chunk file of configuration ``i`` (``c/i/0/...``, one index per field axis)."""
    path = store / "fields" / "c" / str(i)
    while path.is_dir():
        path = path / "0"
    return path


def _rewrite(store, name, index, change):
    """Rewrite entry ``index`` of array ``name`` through zarr: the chunk's checksum stays valid."""
    arr = zarr.open_array(str(store / name), mode="r+")
    value = arr[index]
    arr[index] = change(np.array(value))


def _swap_chunks(store, i, j):
    a, b = _field_chunk(store, i), _field_chunk(store, j)
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(raw_b)
    b.write_bytes(raw_a)


def _edit_config(store, section, key, change):
    """Edit the stored chain config (not its hash)."""

    def edit(attrs):
        attrs["lqcdml"]["config"][section][key] = change(attrs["lqcdml"]["config"][section][key])

    _set_attrs(store, edit)


def _flip_accepted(store):
    """accepted[5, 0]: 1 <-> 0 (the chain's fields say which it was)."""
    _rewrite(store, "accepted", 5, lambda a: np.concatenate([[1.0 - a[0]], a[1:]]))


def _non_unitary(store):
    def change(u):
        u[0, 0, 0, 0, 0, 0, 0, 0] *= 1.01
        return u

    _rewrite(store, "fields", 3, change)


#: damage -> (what it does, a phrase of the report, the store it damages)
DAMAGE = {
    "records chunk corrupted": (lambda s: _flip(s / "delta_H" / "c" / "0" / "0"), "record 'delta_H' is corrupted"),
    "checkpoint chunk corrupted": (lambda s: _flip(_slot(s) / "n_accepted" / "c" / "0"), "'n_accepted'"),
    "records chunk deleted": (lambda s: (s / "accepted" / "c" / "0" / "0").unlink(), "record 'accepted'"),
    "checkpoint rng chunk deleted": (lambda s: shutil.rmtree(_slot(s) / "rng_states" / "c"), "'rng_states'"),
    "checkpoint trajectory missing": (
        lambda s: _edit_json(_slot(s) / "zarr.json", lambda d: d["attributes"].pop("trajectory")),
        "no trajectory counter",
    ),
    "fields shape edited": (
        lambda s: _edit_json(
            s / "fields" / "zarr.json",
            lambda d: (
                d["shape"].__setitem__(-1, 5),
                d["chunk_grid"]["configuration"]["chunk_shape"].__setitem__(-1, 5),
            ),
        ),
        "fields of shape [2, 2, 4, 5]",
    ),
    "resize interrupted": (
        lambda s: _edit_json(s / "delta_H" / "zarr.json", lambda d: d["shape"].__setitem__(0, 40)),
        "a resize was interrupted",
    ),
    "n_committed negative": (
        lambda s: _set_attrs(s, lambda a: a.__setitem__("n_committed", -3)),
        "n_committed = -3 outside 0..10",
    ),
    "n_committed deleted": (lambda s: _set_attrs(s, lambda a: a.pop("n_committed")), "n_committed = None"),
    "n_committed a string": (lambda s: _set_attrs(s, lambda a: a.__setitem__("n_committed", "7")), "n_committed = '7'"),
    "records array missing": (lambda s: shutil.rmtree(s / "delta_H"), "array 'delta_H' is missing"),
    "fields metadata missing": (lambda s: (s / "fields" / "zarr.json").unlink(), "array 'fields'"),
    "fields metadata garbage": (lambda s: (s / "fields" / "zarr.json").write_text("{not json"), "array 'fields'"),
    # chunks of the fields: damage of the bytes (the checksum fails), in the middle and at the end
    "fields chunk bit flip (middle)": (lambda s: _flip(_field_chunk(s, 4)), "configuration 4"),
    "fields chunk bit flip (last)": (lambda s: _flip(_field_chunk(s, 9)), "configuration 9"),
    "fields chunk truncated": (
        lambda s: _field_chunk(s, 9).write_bytes(_field_chunk(s, 9).read_bytes()[:40]),
        "configuration 9",
    ),
    "fields chunk emptied": (lambda s: _field_chunk(s, 6).write_bytes(b""), "configuration 6"),
    "fields chunk garbage appended": (
        lambda s: _field_chunk(s, 9).write_bytes(_field_chunk(s, 9).read_bytes() + b"garbage"),
        "configuration 9",
    ),
    "fields chunk deleted": (lambda s: _field_chunk(s, 5).unlink(), "configuration"),
    # valid checksums, wrong content
    "fields NaN": (
        lambda s: _rewrite(s, "fields", 7, lambda f: np.where(f == f.flat[0], np.nan, f)),
        "configuration 7",
    ),
    "two field chunks swapped": (lambda s: _swap_chunks(s, 2, 6), "configuration 2"),
    "chunk copied from another replica": (
        lambda s: shutil.copyfile(_field_chunk(s.parent / "r2.zarr", 3), _field_chunk(s, 3)),
        "configuration 3",
    ),
    "plaquette record rewritten": (
        lambda s: _rewrite(s, "plaquette", 4, lambda p: p + 0.01),
        "record plaquette[4, chain 0]",
    ),
    "trajectory record rewritten": (lambda s: _rewrite(s, "trajectory", 3, lambda t: t + 1), "trajectory[3] = 5"),
    "accepted record rewritten": (_flip_accepted, "accepted"),
    "content digest rewritten": (lambda s: _rewrite(s, "digest", 8, lambda d: d + 1), "configuration 8"),
    # the stored config and its hash
    "theory.beta edited, hash kept": (
        lambda s: _edit_config(s, "theory", "beta", lambda b: b + 0.5),
        "stored config hashes to",
    ),
    "chain.seed edited, hash kept": (
        lambda s: _edit_config(s, "chain", "seed", lambda x: x + 1),
        "stored config hashes to",
    ),
    "config_hash edited": (
        lambda s: _set_attrs(s, lambda a: a["lqcdml"].__setitem__("config_hash", "0" * 16)),
        "stored config hashes to",
    ),
    "precision edited": (
        lambda s: _set_attrs(s, lambda a: a["lqcdml"].__setitem__("precision", "float32")),
        "stored config hashes to",
    ),
    "replica edited": (lambda s: _set_attrs(s, lambda a: a["lqcdml"].__setitem__("replica", 2)), "content digest"),
    "lattice edited in the theory attribute": (
        lambda s: _set_attrs(s, lambda a: a["lqcdml"]["theory"].__setitem__("lattice", [4, 5])),
        "attribute 'theory'",
    ),
    "plaquette removed from the records list": (
        lambda s: _set_attrs(s, lambda a: a["lqcdml"]["records"].remove("plaquette")),
        "missing from its records list",
    ),
    "digest removed from the records list": (
        lambda s: _set_attrs(s, lambda a: a["lqcdml"]["records"].remove("digest")),
        "missing from its records list",
    ),
    # array metadata
    "fields dtype edited": (
        lambda s: _edit_json(s / "fields" / "zarr.json", lambda d: d.__setitem__("data_type", "float32")),
        "data type float32",
    ),
    "crc32c codec removed": (
        lambda s: _edit_json(s / "fields" / "zarr.json", lambda d: d.__setitem__("codecs", d["codecs"][:2])),
        "codecs",
    ),
    "record dtype edited": (
        lambda s: _edit_json(s / "trajectory" / "zarr.json", lambda d: d.__setitem__("data_type", "float64")),
        "record 'trajectory' of data type float64",
    ),
    # the checkpoint
    "checkpoint rng chunk file deleted": (
        lambda s: (_slot(s) / "rng_states" / "c" / "0" / "0").unlink(),
        "'rng_states'",
    ),
    "checkpoint n_accepted rewritten": (
        lambda s: _rewrite(s, f"checkpoint/{_slot(s).name}/n_accepted", 0, lambda a: a + 1),
        "the checkpoint counts",
    ),
    "checkpoint slot commit edited": (
        lambda s: _edit_json(_slot(s) / "zarr.json", lambda d: d["attributes"].__setitem__("n", 3)),
        "belongs to commit 3",
    ),
    "n_committed raised by one": (
        lambda s: _set_attrs(s, lambda a: a.__setitem__("n_committed", 11)),
        "n_committed = 11 outside 0..10",
    ),
    "SU(2) link off the group": (_non_unitary, "configuration 3", "su2.zarr"),
}


#: damage that leaves what ``measure`` reads intact (it reads the fields, not the chain's
#: bookkeeping): measure may go on; verify and generate refuse
MEASURE_UNAFFECTED = {
    "theory.beta edited, hash kept",
    "chain.seed edited, hash kept",
    "precision edited",
    "plaquette record rewritten",
    "trajectory record rewritten",
    "accepted record rewritten",
    "lattice edited in the theory attribute",
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damage_is_reported_and_refused_in_one_line(case, pristine, tmp_path, capsys):
    damage, message, *which = DAMAGE[case]
    name = which[0] if which else "s.zarr"
    ensemble = "su2" if name == "su2.zarr" else "u1"
    for other in {name, "r2.zarr"}:  # the damaged store, and replica 2 to copy from
        shutil.copytree(pristine / other, tmp_path / "run" / other)
    store = tmp_path / "run" / name
    damage(store)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(["verify", str(store)]) == 4
    report = json.loads(capsys.readouterr().out)
    text = json.dumps(report)
    assert not report["ok"] and message in text, text
    cfg = str(pristine / "config.yaml")
    measure = [
        "measure",
        "--config",
        cfg,
        "--ensemble",
        ensemble,
        "--store",
        str(store),
        "--out",
        str(tmp_path / "o.zarr"),
    ]
    if case == "resize interrupted":  # bookkeeping only: measure refuses, generate finishes the resize
        assert main(measure) == 4
        assert "a resize was interrupted" in capsys.readouterr().err
        assert main(["generate", "--config", cfg, "--ensemble", "u1", "chain.n_configs=12", "--store", str(store)]) == 0
        assert "finished a resize that was interrupted" in capsys.readouterr().err
        assert main(["verify", str(store)]) == 0
        return
    n = 12 if ensemble == "u1" else 9
    code = main(["generate", "--config", cfg, "--ensemble", ensemble, f"chain.n_configs={n}", "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 4 and err.count("\n") == 1 and "Traceback" not in err, err
    assert snapshot(tmp_path) == before  # generate wrote nothing: not even a resize
    code = main(measure)
    err = capsys.readouterr().err
    if case.startswith("checkpoint") or case in MEASURE_UNAFFECTED:  # measure reads no checkpoint
        assert code == 0, err
        shutil.rmtree(tmp_path / "o.zarr")
    else:  # measure stops at the damaged configuration: its last line says why
        last = err.strip().splitlines()[-1]
        assert code in (2, 4) and last.startswith("lqcdml measure: ") and "Traceback" not in err, (code, err)
    assert snapshot(tmp_path) == before  # nothing stored changed, nothing left behind


def test_the_pristine_stores_verify_and_continue(pristine, tmp_path, capsys):
    """The undamaged stores pass verify in full and quick mode, and generate continues them."""
    shutil.copytree(pristine, tmp_path / "run")
    for name in ("s.zarr", "r2.zarr", "su2.zarr"):
        assert main(["verify", str(tmp_path / "run" / name)]) == 0
        assert main(["verify", "--quick", str(tmp_path / "run" / name)]) == 0
    capsys.readouterr()
    cfg = str(pristine / "config.yaml")
    for mode in ("tail", "full"):
        n = 11 if mode == "tail" else 12
        assert (
            main(
                [
                    "generate",
                    "--config",
                    cfg,
                    "--ensemble",
                    "u1",
                    f"chain.n_configs={n}",
                    "--verify",
                    mode,
                    "--store",
                    str(tmp_path / "run" / "s.zarr"),
                ]
            )
            == 0
        )
    assert main(["verify", str(tmp_path / "run" / "s.zarr")]) == 0
