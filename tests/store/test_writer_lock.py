"""One writer per store: a second writer refuses with the holder named; a SIGKILLed
holder leaves no stale lock; two concurrent generate jobs leave the uninterrupted chain."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lqcdml.cli.generate import generate
from lqcdml.config import compose_experiment, dump
from lqcdml.store import EnsembleStore, StoreError, lock_path, writer_lock

from ..cli.helpers import BIN, assert_same_chain, env_with_bin, store_digest

_HOLD = (
    "import sys, time\nfrom lqcdml.store import writer_lock\nwith writer_lock(sys.argv[1]):\n"
    "    print('locked', flush=True)\n    time.sleep(60)\n"
)


def test_a_second_writer_is_refused_with_the_holders_pid_and_host(tmp_path):
    store = tmp_path / "s.zarr"
    with writer_lock(store):
        with pytest.raises(
            StoreError,
            match=rf"is being written by PID {os.getpid()} on host \S+; "
            "allowed: one writer per store",
        ):
            with writer_lock(store):
                pass
    with writer_lock(store):  # released on exit
        assert json.loads(lock_path(store).read_text())["pid"] == os.getpid()
    assert not lock_path(store).exists()  # and nothing is left behind


def test_a_sigkilled_holder_leaves_no_stale_lock(tmp_path):
    store = tmp_path / "s.zarr"
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(store)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(StoreError, match=f"PID {proc.pid}"):
        with writer_lock(store):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert lock_path(store).exists()  # a killed holder leaves its file, but not its lock
    with writer_lock(store):  # the OS released it with the process
        pass
    assert not lock_path(store).exists()


def _n(store: Path) -> int:
    try:
        return EnsembleStore.open(store).n_committed
    except StoreError:
        return 0


def test_a_deleted_lock_file_does_not_let_a_second_writer_in(tmp_path):
    """The holder's lock file removed from under it (``rm s.zarr.lock``): a second writer
    locks a new file but not the store itself, and is refused naming the holder."""
    store = tmp_path / "s.zarr"
    store.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(store)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        lock_path(store).unlink()
        with pytest.raises(StoreError, match=rf"being written by PID {proc.pid} .* was removed while it ran"):
            with writer_lock(store):
                pass
        assert not lock_path(store).exists()  # the refused writer removed only its own file
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    with writer_lock(store):  # the holder gone, the store is free
        pass


@pytest.mark.slow
@pytest.mark.parametrize("second_starts", ["mid_chain", "at_creation", "lock_file_deleted"])
def test_two_generate_jobs_on_one_store_one_refuses_and_the_chain_is_the_uninterrupted_one(tmp_path, second_starts):
    cfg = compose_experiment(
        "ci_tiny", ["ensembles.u1.chain.n_configs=500", "ensembles.u1.theory.lattice=[8,8]", "threads=1"]
    )
    path = tmp_path / "config.yaml"
    dump(cfg, path)
    generate(cfg, "u1", 1, tmp_path / "reference.zarr", progress=False)
    store = tmp_path / "s.zarr"
    cmd = [str(BIN / "lqcdml"), "generate", "--config", str(path), "--ensemble", "u1", "--store", str(store)]
    first = subprocess.Popen(cmd, env=env_with_bin(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if second_starts == "mid_chain":
        deadline = time.time() + 60
        while _n(store) < 20 and time.time() < deadline:
            time.sleep(0.01)
    else:  # the first is still starting up (creating the store) or has just begun
        deadline = time.time() + 60
        while not lock_path(store).exists() and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
    if second_starts == "lock_file_deleted":  # rm s.zarr.lock while the first writes
        deadline = time.time() + 60
        while _n(store) < 20 and time.time() < deadline:
            time.sleep(0.01)
        lock_path(store).unlink()
    second = subprocess.run(cmd, env=env_with_bin(), capture_output=True, text=True, timeout=120)
    assert first.poll() is None, "the first job finished before the second started"
    assert second.returncode == 2, second.stderr
    assert f"is being written by PID {first.pid}" in second.stderr and second.stderr.count("\n") == 1
    assert first.wait(timeout=300) == 0, first.stderr.read()  # and never saw false damage
    first.stderr.close()
    assert_same_chain(store_digest(tmp_path / "reference.zarr"), store_digest(store))
