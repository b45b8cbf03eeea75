"""The measurement driver resumes like generation: a ``lqcdml measure`` killed with SIGKILL
continues from its journal to the uninterrupted observable store bit for bit, measuring only
what is left; a journal of another store, another plan, or a damaged one is discarded with
one line; a failing journal write leaves an existing observable store untouched."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr
import zarr

from lqcdml.cli.generate import generate
from lqcdml.cli.main import main
from lqcdml.config import compose_experiment, dump
from lqcdml.driver import measure as measure_module
from lqcdml.driver.measure import measure_store
from lqcdml.store import EnsembleStore, StoreDamage, StoreError, read_observables
from lqcdml.store.measure_journal import MeasureJournal, journal_path

from ..cli.helpers import BIN, env_with_bin, snapshot

N_CONFIGS, N_THERM = 30, 2
TOTAL = N_CONFIGS - N_THERM  # configurations measured
SETTINGS = [
    f"ensembles.u1.chain.n_configs={N_CONFIGS}",
    f"ensembles.u1.chain.n_therm={N_THERM}",
    "threads=1",
    # string (loop) and float (flow_time) coordinates; the flow makes a configuration take a while
    "ensembles.u1.measure.observables=[plaquette,topological_charge,wilson_loops,gradient_flow]",
    "ensembles.u1.measure.wilson_loops=[[1,1],[1,2]]",
    "ensembles.u1.measure.gradient_flow.t_max=0.2",
    "ensembles.u1.measure.gradient_flow.eps=0.02",
    "ensembles.u1.measure.gradient_flow.measure_every=5",
]
#: attrs that may differ between an uninterrupted and a resumed run: wall time, the code's commit
VOLATILE = ("measure_seconds", "provenance")


class _Stop(Exception):
    """Raised by hooks to stop a measurement in the middle (a crash, within the process)."""


class _Hooks:
    """Records what a measurement reports; ``stop_after``: raise ``_Stop`` after that many
    configurations were measured (each is committed before its progress is reported)."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[tuple] = []
        self.stop_after = stop_after

    def begin(self, done, total, replica):
        self.calls.append(("begin", done, total, replica))

    def progress(self, done, total):
        self.calls.append(("progress", done, total))
        if self.stop_after is not None and len(self.measured) >= self.stop_after:
            raise _Stop

    def message(self, text):
        self.calls.append(("message", text))

    @property
    def begun(self) -> int:
        return next(c[1] for c in self.calls if c[0] == "begin")

    @property
    def measured(self) -> list:
        return [c for c in self.calls if c[0] == "progress"]

    @property
    def messages(self) -> list[str]:
        return [c[1] for c in self.calls if c[0] == "message"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A small U(1) ensemble, its config file and its uninterrupted observable store."""
    root = tmp_path_factory.mktemp("measure_resume")
    cfg = compose_experiment("ci_tiny", SETTINGS)
    dump(cfg, root / "config.yaml")
    generate(cfg, "u1", 1, root / "r01.zarr", progress=False)
    measure_store(cfg, "u1", root / "r01.zarr", root / "reference.zarr")
    return cfg, root / "config.yaml", root / "r01.zarr", read_observables(root / "reference.zarr")


def _assert_same(reference: xr.Dataset, out: Path) -> None:
    """``out`` holds ``reference`` bit for bit: every variable and coordinate, and the attrs but
    the volatile ones; no journal is left beside it."""
    ds = read_observables(out)
    assert set(ds.variables) == set(reference.variables)
    for name in reference.variables:
        a, b = reference[name].values, ds[name].values
        assert a.dtype == b.dtype and a.shape == b.shape and reference[name].dims == ds[name].dims, name
        if a.dtype.kind == "O":  # the loop labels: strings
            assert a.tolist() == b.tolist(), name
        else:
            assert a.tobytes() == b.tobytes(), name
    assert {k: v for k, v in ds.attrs.items() if k not in VOLATILE} == {
        k: v for k, v in reference.attrs.items() if k not in VOLATILE
    }
    assert not journal_path(out).exists()


def _interrupted(cfg, store: Path, out: Path, after: int) -> None:
    """Measure ``store`` into ``out`` and stop after ``after`` configurations (journal kept)."""
    with pytest.raises(_Stop):
        measure_store(cfg, "u1", store, out, _Hooks(stop_after=after))
    assert MeasureJournal.open(journal_path(out)).n_committed == after


def _committed(out: Path) -> int:
    """The configurations the journal of ``out`` has committed (0 while there is none)."""
    try:
        return int(json.loads((journal_path(out) / "zarr.json").read_text())["attributes"]["n_committed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _measure_cmd(cfg_path: Path, store: Path, out: Path) -> list[str]:
    """The command line of ``lqcdml measure`` of ``store`` into ``out`` (``main`` takes it without its first word)."""
    paths = ["--config", str(cfg_path), "--store", str(store), "--out", str(out)]
    return [str(BIN / "lqcdml"), "measure", *paths, "--ensemble", "u1", "--progress", "lines"]


def _kill_after(cmd: list[str], out: Path, target: int, rng: random.Random) -> int:
    """Run ``cmd``, SIGKILL it once its journal holds ``target`` configurations (and a random
    moment more); returns how many the journal holds then. The journal never shrinks while it
    runs: a rerun continues the journal, it does not start again."""
    before = _committed(out)
    proc = subprocess.Popen(
        cmd, env=env_with_bin(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline, seen = time.time() + 120, [before]
    while proc.poll() is None and seen[-1] < target and time.time() < deadline:
        time.sleep(0.002)
        seen.append(_committed(out))
    time.sleep(rng.uniform(0.0, 0.01))
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err.decode()[-2000:])
    assert min(seen) == before and seen == sorted(seen), "the journal was restarted"
    assert b"discarded" not in err
    return _committed(out)


def test_sigkilled_measure_resumes_to_the_uninterrupted_store_measuring_only_the_rest(chain, tmp_path):
    cfg, cfg_path, store, reference = chain
    rng, out = random.Random(11), tmp_path / "o.zarr"
    history = []
    for target in (1, rng.randint(8, TOTAL - 12), TOTAL - 6):  # after one, some, almost all
        history.append(_kill_after(_measure_cmd(cfg_path, store, out), out, target, rng))
        assert target <= history[-1] < TOTAL and not out.exists(), history
    hooks = _Hooks()
    measure_store(cfg, "u1", store, out, hooks)
    assert hooks.begun == N_THERM + history[-1] and not hooks.messages
    assert [c[1] for c in hooks.measured] == list(range(N_THERM + history[-1] + 1, N_CONFIGS + 1))
    _assert_same(reference, out)


def test_a_run_killed_after_its_last_commit_only_writes_the_store(chain, tmp_path, monkeypatch):
    cfg, _, store, reference = chain
    out = tmp_path / "o.zarr"

    def killed(ds, path):
        raise _Stop

    with monkeypatch.context() as m:
        m.setattr(measure_module, "write_observables", killed)
        with pytest.raises(_Stop):
            measure_store(cfg, "u1", store, out)
    hooks = _Hooks()
    measure_store(cfg, "u1", store, out, hooks)  # coordinates and rows from the journal alone
    assert hooks.calls == [("begin", N_CONFIGS, N_CONFIGS, 1)]
    _assert_same(reference, out)


def test_a_journal_of_a_store_that_grew_is_continued(chain, tmp_path):
    cfg, _, store, _ = chain
    grown_store, out = tmp_path / "grown.zarr", tmp_path / "o.zarr"
    shutil.copytree(store, grown_store)
    _interrupted(cfg, grown_store, out, 5)
    grown = compose_experiment("ci_tiny", [*SETTINGS, f"ensembles.u1.chain.n_configs={N_CONFIGS + 3}"])
    generate(grown, "u1", 1, grown_store, progress=False)
    hooks = _Hooks()
    measure_store(grown, "u1", grown_store, out, hooks)
    assert hooks.begun == N_THERM + 5 and not hooks.messages
    measure_store(grown, "u1", grown_store, tmp_path / "reference.zarr")
    _assert_same(read_observables(tmp_path / "reference.zarr"), out)


def _other_store(cfg, store: Path, tmp_path: Path, monkeypatch) -> tuple[object, Path, str]:
    other = compose_experiment("ci_tiny", [*SETTINGS, "ensembles.u1.chain.seed=99", "ensembles.u1.chain.n_configs=8"])
    generate(other, "u1", 1, tmp_path / "other.zarr", progress=False)
    return other, tmp_path / "other.zarr", "config_hash"


def _other_plan(cfg, store: Path, tmp_path: Path, monkeypatch) -> tuple[object, Path, str]:
    other = compose_experiment("ci_tiny", [*SETTINGS, "ensembles.u1.measure.observables=[plaquette,wilson_loops]"])
    return other, store, "plan"


def _changed_records(cfg, store: Path, tmp_path: Path, monkeypatch) -> tuple[object, Path, str]:
    changed = tmp_path / "changed.zarr"
    shutil.copytree(store, changed)
    delta_h = zarr.open_array(str(changed / "delta_H"), mode="r+")
    delta_h[N_THERM + 1, 0] = 0.5  # a journalled configuration's record
    return cfg, changed, f"configuration {N_THERM + 1} (trajectory {N_THERM + 2}) changed in the ensemble store"


def _other_code(cfg, store: Path, tmp_path: Path, monkeypatch) -> tuple[object, Path, str]:
    """The measure command's source edited between the kill and the rerun."""
    import lqcdml.code_digest

    real = lqcdml.code_digest.source_digest
    monkeypatch.setattr(lqcdml.code_digest, "source_digest", lambda *a, **k: real(*a, **k) + "-edited")
    return cfg, store, "code"


@pytest.mark.parametrize("other", [_other_store, _other_plan, _changed_records, _other_code])
def test_a_journal_of_another_measurement_is_discarded_with_one_line(chain, tmp_path, other, monkeypatch):
    cfg, _, store, _ = chain
    out = tmp_path / "o.zarr"
    _interrupted(cfg, store, out, 4)
    other_cfg, other_store, why = other(cfg, store, tmp_path, monkeypatch)
    hooks = _Hooks()
    measure_store(other_cfg, "u1", other_store, out, hooks)
    assert len(hooks.messages) == 1 and why in hooks.messages[0] and "discarded" in hooks.messages[0]
    assert "\n" not in hooks.messages[0] and hooks.begun == N_THERM
    measure_store(other_cfg, "u1", other_store, tmp_path / "reference.zarr")
    _assert_same(read_observables(tmp_path / "reference.zarr"), out)


def _garbage_log_chunk(journal: Path) -> None:
    chunk = next(p for p in (journal / "log" / "c").rglob("*") if p.is_file())
    chunk.write_bytes(b"\x00garbage" * 7)


def _lost_log_chunk(journal: Path) -> None:
    shutil.rmtree(journal / "log" / "c")


def _flipped_byte(journal: Path) -> None:
    """A record rewritten with valid checksums but one byte changed: its own digest fails."""
    log = zarr.open_array(str(journal / "log"), mode="r+")
    line = log[1]
    line[60] ^= 0xFF
    log[1] = line


def _broken_attrs(journal: Path) -> None:
    (journal / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {"n_comm')


def _half_removed(journal: Path) -> None:
    (journal / "zarr.json").unlink()


@pytest.mark.parametrize("damage", [_garbage_log_chunk, _lost_log_chunk, _flipped_byte, _broken_attrs, _half_removed])
def test_a_damaged_journal_is_discarded_with_one_line(chain, tmp_path, damage):
    cfg, _, store, reference = chain
    out = tmp_path / "o.zarr"
    _interrupted(cfg, store, out, 3)
    damage(journal_path(out))
    hooks = _Hooks()
    measure_store(cfg, "u1", store, out, hooks)
    assert len(hooks.messages) == 1 and "discarded, measuring from configuration 2" in hooks.messages[0]
    assert hooks.begun == N_THERM
    _assert_same(reference, out)


def test_the_command_prints_a_discarded_journal_as_one_line(chain, tmp_path, capsys):
    _, cfg_path, store, reference = chain
    out = tmp_path / "o.zarr"
    journal_path(out).mkdir()
    (journal_path(out) / "zarr.json").write_text("not json")
    assert main(_measure_cmd(cfg_path, store, out)[1:]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "journal" in line]
    assert len(lines) == 1 and lines[0].startswith("[measure u1] measurement journal") and "discarded" in lines[0]
    _assert_same(reference, out)


def test_hooks_without_message_get_a_warning(chain, tmp_path):
    cfg, _, store, reference = chain
    out = tmp_path / "o.zarr"
    journal_path(out).mkdir()

    class Plain:
        def begin(self, done, total, replica):
            pass

        def progress(self, done, total):
            pass

    with pytest.warns(UserWarning, match="measurement journal .* discarded"):
        measure_store(cfg, "u1", store, out, Plain())
    _assert_same(reference, out)


def test_a_failing_journal_write_leaves_the_observable_store_untouched(chain, tmp_path, monkeypatch):
    cfg, _, store, reference = chain
    out = tmp_path / "o.zarr"
    shutil.copytree(store.with_name("reference.zarr"), out)
    before = snapshot(out)
    commit, full_at = MeasureJournal.commit, [0]

    def full_disk(self, k, *args, **kwargs):
        if k == full_at[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return commit(self, k, *args, **kwargs)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as m:
        m.setattr(MeasureJournal, "commit", full_disk)
        with pytest.raises(StoreError, match="No space left on device.*is untouched"):
            measure_store(cfg, "u1", store, out)
        assert snapshot(out) == before and not journal_path(out).exists()  # nothing committed: nothing left
        full_at[0] = 3
        with pytest.raises(StoreError, match="No space left on device.*is untouched"):
            measure_store(cfg, "u1", store, out)
    assert snapshot(out) == before and _committed(out) == 3
    with monkeypatch.context() as m:
        m.setattr(MeasureJournal, "create", read_only)
        with pytest.raises(StoreError, match="cannot create the measurement journal"):
            measure_store(cfg, "u1", store, tmp_path / "new.zarr")
    assert not (tmp_path / "new.zarr").exists() and not journal_path(tmp_path / "new.zarr").exists()
    hooks = _Hooks()
    measure_store(cfg, "u1", store, out, hooks)  # the disk has room again: continues
    assert hooks.begun == N_THERM + 3
    _assert_same(reference, out)


def test_a_measurement_that_fails_by_itself_leaves_no_journal(chain, tmp_path, monkeypatch):
    """A damaged configuration (or a solver that does not converge) is one line and leaves
    nothing behind; a rerun would fail the same way."""
    cfg, _, store, _ = chain
    out = tmp_path / "o.zarr"
    read_fields = EnsembleStore.read_fields

    def damaged(self, i):
        if i == N_THERM + 3:
            raise StoreDamage(f"configuration {i} is corrupted")
        return read_fields(self, i)

    monkeypatch.setattr(EnsembleStore, "read_fields", damaged)
    with pytest.raises(StoreDamage, match="configuration 5 is corrupted"):
        measure_store(cfg, "u1", store, out)
    assert not out.exists() and not journal_path(out).exists()
