"""Damage that resume and measurement rely on: ``lqcdml verify`` reports each case (exit 4,
the array or index named), ``generate`` refuses to extend such a store and ``measure``
refuses to read it, each with one line; nothing stored is changed."""

import json
import shutil

import pytest

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump

from ..cli.helpers import snapshot


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("damage")
    cfg = compose_experiment("ci_tiny", ["ensembles.u1.chain.n_configs=10", "ensembles.u1.chain.n_therm=2"])
    dump(cfg, root / "config.yaml")
    assert main(["generate", "--config", str(root / "config.yaml"), "--ensemble", "u1", "--store",
                 str(root / "s.zarr"), "--progress", "lines"]) == 0
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


DAMAGE = {
    "records chunk corrupted": (lambda s: _flip(s / "delta_H" / "c" / "0" / "0"), "record 'delta_H' is corrupted"),
    "checkpoint chunk corrupted": (lambda s: _flip(_slot(s) / "n_accepted" / "c" / "0"), "'n_accepted'"),
    "records chunk deleted": (lambda s: (s / "accepted" / "c" / "0" / "0").unlink(), "record 'accepted'"),
    "checkpoint rng chunk deleted": (lambda s: shutil.rmtree(_slot(s) / "rng_states" / "c"), "'rng_states'"),
    "checkpoint trajectory missing": (lambda s: _edit_json(_slot(s) / "zarr.json",
                                                           lambda d: d["attributes"].pop("trajectory")),
                                      "no trajectory counter"),
    "fields shape edited": (lambda s: _edit_json(s / "fields" / "zarr.json", lambda d: (
        d["shape"].__setitem__(-1, 5), d["chunk_grid"]["configuration"]["chunk_shape"].__setitem__(-1, 5))),
        "fields of shape [2, 2, 4, 5]"),
    "resize interrupted": (lambda s: _edit_json(s / "delta_H" / "zarr.json",
                                                lambda d: d["shape"].__setitem__(0, 40)),
                           "a resize was interrupted"),
    "n_committed negative": (lambda s: _set_attrs(s, lambda a: a.__setitem__("n_committed", -3)),
                             "n_committed = -3 outside 0..10"),
    "n_committed deleted": (lambda s: _set_attrs(s, lambda a: a.pop("n_committed")), "n_committed = None"),
    "n_committed a string": (lambda s: _set_attrs(s, lambda a: a.__setitem__("n_committed", "7")),
                             "n_committed = '7'"),
    "records array missing": (lambda s: shutil.rmtree(s / "delta_H"), "array 'delta_H' is missing"),
    "fields metadata missing": (lambda s: (s / "fields" / "zarr.json").unlink(), "array 'fields'"),
    "fields metadata garbage": (lambda s: (s / "fields" / "zarr.json").write_text("{not json"), "array 'fields'"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damage_is_reported_and_refused_in_one_line(case, pristine, tmp_path, capsys):
    damage, message = DAMAGE[case]
    store = tmp_path / "s.zarr"
    shutil.copytree(pristine / "s.zarr", store)
    damage(store)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(["verify", str(store)]) == 4
    report = json.loads(capsys.readouterr().out)
    text = json.dumps(report)
    assert not report["ok"] and message in text, text
    cfg = str(pristine / "config.yaml")
    if case == "resize interrupted":  # bookkeeping only: measure refuses, generate finishes the resize
        assert main(["measure", "--config", cfg, "--ensemble", "u1", "--store", str(store),
                     "--out", str(tmp_path / "o.zarr")]) == 4
        assert "a resize was interrupted" in capsys.readouterr().err
        assert main(["generate", "--config", cfg, "--ensemble", "u1", "chain.n_configs=12", "--store", str(store)]) == 0
        assert "finished a resize that was interrupted" in capsys.readouterr().err
        assert main(["verify", str(store)]) == 0
        return
    code = main(["generate", "--config", cfg, "--ensemble", "u1", "chain.n_configs=12", "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 4 and err.count("\n") == 1 and "Traceback" not in err, err
    code = main(["measure", "--config", cfg, "--ensemble", "u1", "--store", str(store),
                 "--out", str(tmp_path / "o.zarr")])
    err = capsys.readouterr().err
    if case.startswith("checkpoint"):  # measure reads no checkpoint
        assert code == 0
        shutil.rmtree(tmp_path / "o.zarr")
    else:
        assert code == 4 and err.count("\n") == 1 and "Traceback" not in err, (code, err)
    assert snapshot(tmp_path) == before  # nothing stored changed, nothing left behind
