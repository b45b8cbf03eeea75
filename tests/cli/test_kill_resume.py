"""A chain killed with SIGKILL at random moments resumes without loss, bit for bit: the
library driver 20 times, the ``lqcdml generate`` command end to end 3 times."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lqcdml.cli.generate import generate
from lqcdml.config import compose_experiment, dump

from .helpers import BIN, assert_same_chain, env_with_bin, store_digest


def _n_committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["n_committed"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def _committed_fields(store: Path) -> list[np.ndarray]:
    digest = store_digest(store)
    return list(digest["fields"])


_DRIVER = """
from lqcdml.config import load
from lqcdml.driver.specs import chain_spec
from lqcdml.driver import run_chain_into_store
cfg = load({cfg!r})
run_chain_into_store(chain_spec(cfg, "u1", 1, store_path={store!r}), {store!r}, cfg.ensembles["u1"].chain.n_configs)
"""


def _kill_repeatedly(cmd: list[str], store: Path, n_kills: int, seed: int) -> tuple[list[int], list]:
    """Start ``cmd`` until it finishes, SIGKILLing it ``n_kills`` times at random moments
    after a new commit; every commit must survive unchanged to the end."""
    rng = random.Random(seed)
    kills, history, seen = 0, [], []
    while True:
        start_n = _n_committed(store)
        proc = subprocess.Popen(
            cmd, env=env_with_bin(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        # wait for the job to commit something new, then kill it at a random moment
        deadline = time.time() + 60
        while proc.poll() is None and _n_committed(store) <= start_n and time.time() < deadline:
            time.sleep(0.01)
        if proc.poll() is None and kills < n_kills:
            time.sleep(rng.uniform(0.0, 0.25))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            n = _n_committed(store)
            assert n >= start_n, "a commit was lost"
            history.append(n)
            seen = _committed_fields(store) if n else seen
            continue
        assert proc.wait(timeout=120) == 0
        break
    assert kills >= n_kills, kills
    assert history == sorted(history)
    return history, seen


def _tiny(tmp_path: Path, n_configs: int) -> Path:
    cfg = compose_experiment(
        "ci_tiny", [f"ensembles.u1.chain.n_configs={n_configs}", "ensembles.u1.theory.lattice=[8,8]", "threads=1"]
    )
    cfg_path = tmp_path / "config.yaml"
    dump(cfg, cfg_path)
    generate(cfg, "u1", 1, tmp_path / "reference.zarr", progress=False)
    return cfg_path


@pytest.mark.slow
def test_twenty_random_sigkills_of_the_driver_lose_nothing_and_match_the_uninterrupted_chain(tmp_path):
    n_configs = 260
    cfg_path = _tiny(tmp_path, n_configs)
    store = tmp_path / "killed.zarr"
    cmd = [sys.executable, "-c", _DRIVER.format(cfg=str(cfg_path), store=str(store))]
    history, seen = _kill_repeatedly(cmd, store, 20, 2024)
    assert history[-1] < n_configs
    final = store_digest(store)
    for i, fields in enumerate(seen):
        assert np.array_equal(final["fields"][i], fields)
    assert_same_chain(store_digest(tmp_path / "reference.zarr"), final)


@pytest.mark.slow
def test_sigkilled_generate_command_resumes_to_the_uninterrupted_chain(tmp_path):
    cfg_path = _tiny(tmp_path, 120)
    store = tmp_path / "killed.zarr"
    cmd = [
        str(BIN / "lqcdml"),
        "generate",
        "--config",
        str(cfg_path),
        "--ensemble",
        "u1",
        "--replica",
        "1",
        "--store",
        str(store),
        "--progress",
        "lines",
    ]
    _kill_repeatedly(cmd, store, 3, 7)
    assert_same_chain(store_digest(tmp_path / "reference.zarr"), store_digest(store))
