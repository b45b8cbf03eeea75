"""Checkpoints are data, never code: a pickled payload is refused in one line before any of
it runs; what the trainers save reads back with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump
from lqcdml.driver import read_checkpoint, save_checkpoint
from lqcdml.store import StoreError


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def _evil(path: Path, marker: Path, how: str = "zip") -> Path:
    data = {"trainer": {"step": 1}, "training_hash": _Payload(marker), "complete": True}
    if how == "zip":
        torch.save(data, path)
    elif how == "legacy":
        torch.save(data, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(data, protocol=4))
    return path


@pytest.mark.parametrize("how", ["zip", "legacy", "raw"])
def test_a_payload_is_refused_in_one_line_and_never_runs(tmp_path, how):
    marker = tmp_path / "MARKER"
    path = _evil(tmp_path / "evil.pt", marker, how)
    with pytest.raises(StoreError) as err:
        read_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and not marker.exists()
    assert message.startswith(f"model checkpoint {str(path)!r} is not an lqcdml checkpoint (it needs code to load: ")
    assert "allowed: a checkpoint written by lqcdml train" in message
    if how != "raw":
        assert "system" in message  # posix.system / nt.system: what the pickle asked for


def test_garbage_is_not_readable_in_one_line(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"hello\nworld\n")
    with pytest.raises(StoreError, match="is not readable") as err:
        read_checkpoint(path)
    assert "\n" not in str(err.value)


def test_saved_numpy_and_paths_become_plain_data(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(
        path,
        {
            "trainer": {
                "step": np.int64(3),
                "history": {"ess": [np.float32(0.5), 0.25]},
                "array": np.arange(3),
                "where": tmp_path,
                "pair": (1, np.float64(2.0)),
            }
        },
    )
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    trainer = read_checkpoint(path)["trainer"]
    assert trainer["step"] == 3 and type(trainer["step"]) is int
    assert trainer["history"]["ess"] == [0.5, 0.25] and trainer["pair"] == (1, 2.0)
    assert torch.equal(trainer["array"], torch.arange(3)) and trainer["where"] == str(tmp_path)


def test_an_object_that_is_not_data_is_not_saved(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['trainer'\]\['x'\] = object object"):
        save_checkpoint(tmp_path / "m.pt", {"trainer": {"x": object()}})
    assert not (tmp_path / "m.pt").exists()


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    dump(compose_experiment("ci_tiny", []), path)
    return path


@pytest.mark.parametrize("command", ["generate", "train"])
def test_cli_refuses_a_payload_checkpoint_without_running_it(command, tiny_cfg, tmp_path, capsys):
    marker = tmp_path / "MARKER"
    evil = _evil(tmp_path / "evil.pt", marker)
    args = (
        ["generate", "--store", str(tmp_path / "s.zarr"), "--model", str(evil)]
        if command == "generate"
        else ["train", "--checkpoint", str(evil)]
    )
    capsys.readouterr()
    assert main([*args, "--config", str(tiny_cfg), "--ensemble", "flow", "--progress", "lines"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"model checkpoint {str(evil)!r} is not an lqcdml checkpoint (it needs code to load: " in err
    assert not marker.exists() and not (tmp_path / "s.zarr").exists()
