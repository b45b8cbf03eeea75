"""The machine's faults: a full disk at any write, a read-only or misplaced path, an
output that is a folder, a config that is not text. Each is one line with exit 2,
nothing committed is lost, nothing is left behind, and a rerun continues the chain."""

import errno
from pathlib import Path

import pytest
import zarr.storage._local as zarr_local
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump

from ..conftest import count_case
from .helpers import assert_same_chain, snapshot, store_digest

N = 10


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    cfg = compose_experiment("ci_tiny", [f"ensembles.u1.chain.n_configs={N}", "ensembles.u1.chain.n_therm=1"])
    dump(cfg, root / "config.yaml")
    assert (
        main(
            [
                "generate",
                "--config",
                str(root / "config.yaml"),
                "--ensemble",
                "u1",
                "--store",
                str(root / "reference.zarr"),
                "--progress",
                "lines",
            ]
        )
        == 0
    )
    return root


def _generate(root: Path, store: Path, *extra: str) -> int:
    return main(
        [
            "generate",
            "--config",
            str(root / "config.yaml"),
            "--ensemble",
            "u1",
            "--store",
            str(store),
            "--manifest",
            str(store.with_suffix(".json")),
            "--progress",
            "lines",
            *extra,
        ]
    )


def _leftovers(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.name.endswith((".partial", ".creating", ".writing", ".lock"))]


def _leftovers_once_settled(folder: Path, timeout: float = 10.0) -> list[str]:
    """``_leftovers`` after writes still in flight have ended: zarr writes the documents of one
    call concurrently (its I/O threads), so when one write fails the call raises while another
    may still be between its temporary file and the rename. Waits until none is left or
    ``timeout`` seconds pass; what is left then is a real leftover."""
    import time

    deadline = time.monotonic() + timeout
    while (left := _leftovers(folder)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fail_at=st.integers(min_value=0, max_value=120), resume_from=st.sampled_from([0, 6]))
@example(fail_at=1, resume_from=6)  # found by hypothesis: the disk filled between the arrays of a resize
def test_a_full_disk_at_any_write_is_one_line_and_loses_nothing(setup, tmp_path_factory, fail_at, resume_from):
    count_case("os faults: disk full at a random write")
    folder = tmp_path_factory.mktemp("run")
    store = folder / "s.zarr"
    if resume_from:
        assert _generate(setup, store, f"chain.n_configs={resume_from}") == 0
    before = store_digest(store) if store.exists() else None
    calls = {"n": 0}
    real_put = zarr_local._put

    def failing_put(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > fail_at:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))
        return real_put(*args, **kwargs)

    zarr_local._put = failing_put
    try:
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = _generate(setup, store)
    finally:
        zarr_local._put = real_put
    lines = [ln for ln in err.getvalue().splitlines() if not ln.startswith("[")]  # progress lines aside
    assert code in (0, 2), err.getvalue()
    if code == 2:
        assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in err.getvalue()
    left = _leftovers_once_settled(folder)
    assert not left, left
    if before is not None:  # every configuration committed before the fault is unchanged
        after = store_digest(store)
        assert after["n"] >= before["n"]
        assert (after["fields"][: before["n"]] == before["fields"]).all()
    # with the disk back, the rerun continues to the uninterrupted chain
    assert _generate(setup, store) == 0
    assert_same_chain(store_digest(setup / "reference.zarr"), store_digest(store))


def test_misplaced_paths_and_bad_configs_are_one_line(setup, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert _generate(setup, tmp_path / "afile" / "s.zarr") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile' is a file, not a folder" in err
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)))
    assert main(["generate", "--config", str(tmp_path / "binary.yaml"), "--store", str(tmp_path / "b.zarr")]) == 2
    assert "not text" in capsys.readouterr().err
    out_dir = tmp_path / "outdir"
    out_dir.mkdir()
    assert main(["compose", "+experiment=ci_tiny", "--out", str(out_dir)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    # measure into a folder that is not an observable store: refused, the folder untouched
    (out_dir / "precious.txt").write_text("keep")
    before = snapshot(tmp_path)
    assert (
        main(
            [
                "measure",
                "--config",
                str(setup / "config.yaml"),
                "--ensemble",
                "u1",
                "--store",
                str(setup / "reference.zarr"),
                "--out",
                str(out_dir),
            ]
        )
        == 2
    )
    assert "is not an observable store" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
    assert not _leftovers(tmp_path)


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs (root only); unmounted after the test."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN): the real full-disk and read-only cases cannot run")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_real_full_disk_and_a_read_only_file_system(setup, small_disk, capsys):
    import subprocess

    store = small_disk / "s.zarr"
    many = ["chain.n_configs=4000", "limits.disk_gb=1000"]  # the user raised the disk limit past the disk
    code = main(
        [
            "generate",
            "--config",
            str(setup / "config.yaml"),
            "--ensemble",
            "u1",
            "--store",
            str(store),
            "--progress",
            "lines",
            *many,
        ]
    )
    err = [ln for ln in capsys.readouterr().err.splitlines() if not ln.startswith("[")]
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0], err
    assert not _leftovers(small_disk)
    from lqcdml.store import EnsembleStore, verify_store

    n = EnsembleStore.open(store).n_committed
    assert n > 10 and verify_store(store)["ok"]  # what was committed before the disk filled is intact
    # without the raised limit the check refuses up front, writing nothing
    assert (
        main(
            [
                "generate",
                "--config",
                str(setup / "config.yaml"),
                "--ensemble",
                "u1",
                "--store",
                str(store),
                "chain.n_configs=4000",
            ]
        )
        == 2
    )
    assert "raise with limits.disk_gb" in capsys.readouterr().err
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code = main(["generate", "--config", str(setup / "config.yaml"), "--ensemble", "u1", "--store", str(store), *many])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Read-only file system" in err, err
    assert EnsembleStore.open(store).n_committed == n


def _allocated(folder: Path) -> int:
    """Bytes the file system allocated for everything below ``folder`` (what ``du`` counts)."""
    return sum(p.lstat().st_blocks * 512 for p in [folder, *folder.rglob("*")])


@pytest.mark.parametrize("ensemble, n", [("u1", 150), ("su2", 40)])
def test_the_disk_estimate_is_within_20_percent_of_what_a_run_writes(tmp_path, ensemble, n):
    """The up-front disk check counts what the file system allocates: each configuration's
    chunk rounded up to a block and its chain of chunk folders, the record blocks, the
    metadata and the checkpoint (a 2D U(1) store of 512-byte configurations is mostly
    folders and rounding)."""
    from lqcdml.assembly import field_dtype, field_shape
    from lqcdml.driver.specs import disk_estimate

    cfg = compose_experiment("ci_tiny", [f"ensembles.{ensemble}.chain.n_configs={n}"])
    dump(cfg, tmp_path / "config.yaml")
    ens = cfg.ensembles[ensemble]
    dtype = field_dtype(ens.theory, cfg.dtype)
    shape = field_shape(ens.theory, ens.chain.n_chains)
    store = tmp_path / "s.zarr"
    estimate = disk_estimate(ens, shape, dtype, store, n, new_store=True)
    assert (
        main(["generate", "--config", str(tmp_path / "config.yaml"), "--ensemble", ensemble, "--store", str(store)])
        == 0
    )
    written = _allocated(store)
    assert abs(estimate / written - 1) <= 0.2, (estimate, written)
