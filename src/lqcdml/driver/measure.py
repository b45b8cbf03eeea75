"""Measure every committed configuration of an ensemble store into an observable store,
resumable like generation.

Each configuration's rows are committed to a measurement journal beside ``out``
(``<out>.measuring``, ``store.measure_journal``) as they are measured; a killed run, rerun,
continues from the first configuration not committed and writes the same store bit for bit
(the noise of configuration ``i`` is seeded by (chain seed, job replica, ``i``) alone). The
journal is used only while it matches (``_identity``: the ensemble store's chain hash, model
digest and replica, the thermalisation cut, the expensive flag, the measurement plan and its
settings, device type, precision, lqcdml version and the digest of the source files the
measure command runs (``code_digest``: an edit between a kill and the rerun, such as one that
makes the workflow rerun the job, measures anew); and the ensemble store's records of every
journalled configuration unchanged); otherwise, or if it is damaged, it is discarded with one
line through the hooks and the measurement starts again. The observable store itself is made
whole and replaces its predecessor atomically at the end (``store.write_observables``), then
the journal is removed; a failure before leaves the previous observable store (or none). A
run killed, interrupted or stopped by the machine (a full disk while journalling:
``JournalWriteError``) keeps its journal for a rerun; one that fails by itself (a damaged
configuration, a solver that does not converge) stops in one line and leaves nothing behind.
The run holds the writer lock of ``out`` throughout (one writer per observable store, and
so per journal). The store's attrs record where it comes from (ensemble store,
chain hash, model digest, provenance), the thermalisation cut, whether it is the expensive
measurement, its wall time over all runs that measured it (``measure_seconds``) and how many
(configuration, chain) entries it measured (``measured_entries``, resumed ones included).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
import xarray as xr

from .. import __version__
from ..errors import LqcdmlError
from ..lattice import make_generators
from ..store import EnsembleStore, StoreDamage, StoreError, write_observables, writer_lock
from ..store.measure_journal import MeasureJournal, journal_path, record_sources, remove_journal
from ..store.observables import check_observables_target

if TYPE_CHECKING:
    from ..config import RootConfig

__all__ = ["JournalWriteError", "MeasureHooks", "measure_store"]


class MeasureHooks(Protocol):
    """What a caller sees of a running measurement (progress bars, logs): ``begin`` with the
    first configuration still to measure (later than the cut when resumed), ``message`` one
    line (a discarded journal; hooks without it get a ``UserWarning``)."""

    def begin(self, done: int, total: int, replica: int) -> None: ...

    def progress(self, done: int, total: int) -> None: ...

    def message(self, text: str) -> None: ...


class _Silent:
    def begin(self, done: int, total: int, replica: int) -> None:
        pass

    def progress(self, done: int, total: int) -> None:
        pass

    def message(self, text: str) -> None:
        pass


def _tell(hooks: MeasureHooks, text: str) -> None:
    """One line to the caller: ``hooks.message``, or a warning for hooks without it."""
    line = " ".join(text.split())
    message = getattr(hooks, "message", None)
    if callable(message):
        message(line)
    else:
        warnings.warn(line, stacklevel=3)


def measure_store(
    cfg: RootConfig,
    ensemble: str,
    store_path: Path,
    out: Path,
    hooks: MeasureHooks | None = None,
    include_therm: bool = False,
    expensive: bool = False,
) -> xr.Dataset:
    """Measure ``store_path`` and write the observable store ``out``; returns the dataset.

    The first ``chain.n_therm`` configurations are skipped unless ``include_therm`` (the
    analysis drops them anyway). ``expensive``: instead of ``measure.observables``, the
    expensive observable of the ensemble's estimator kind (``bias_corrected``: full-precision
    tr D^-n per noise) on the entries it names (the labelled configurations of its split,
    every configuration when it scans), NaN elsewhere."""
    with writer_lock(out):
        return _measure(cfg, ensemble, store_path, out, hooks or _Silent(), include_therm, expensive)


def _labelled_chains(
    cfg: RootConfig, ensemble: str, replica: int, n_chains: int, first: int
) -> Callable[[int], np.ndarray]:
    """``select(i) -> chains of configuration i to measure`` for ``measure --expensive``."""
    from ..estimators.pipeline_split import flat_position  # imported when needed: slow
    from ..kinds.estimators import measured_configs

    ens = cfg.ensembles[ensemble]
    labelled = _expensive_kind(cfg, ensemble).expensive_entries(ens)
    if labelled is None:
        return lambda i: np.arange(n_chains)
    per_chain = measured_configs(ens)
    global_replicas = (replica - 1) * n_chains + 1 + np.arange(n_chains)
    return lambda i: np.array(
        [
            c
            for c in range(n_chains)
            if int(flat_position(per_chain, global_replicas[c], np.asarray(i - first))) in labelled
        ],
        dtype=np.int64,
    )


def _expensive_kind(cfg: RootConfig, ensemble: str):
    """The ensemble's estimator kind, refused in one line unless it reads an expensive observable."""
    from ..kinds import ESTIMATORS

    kind = ESTIMATORS.lookup(cfg.ensembles[ensemble].estimator.kind)
    if "expensive" not in kind.reads:
        allowed = ", ".join(k.name for k in ESTIMATORS if "expensive" in k.reads)
        raise StoreError(
            f"measure --expensive: ensembles.{ensemble}.estimator.kind = {kind.name!r}; allowed: {allowed}"
        )
    return kind


def _open_checked(cfg: RootConfig, ensemble: str, store_path: Path) -> EnsembleStore:
    """The ensemble store, refused if another chain made it, if damaged or if empty."""
    from ..identity import matches_chain

    store = EnsembleStore.open(store_path)
    if not matches_chain(store.meta, cfg.ensembles[ensemble], cfg.dtype):
        raise StoreError(
            f"store {str(store_path)!r} was not generated by ensemble {ensemble!r} of this config "
            "(config hash differs); regenerate it or pass the config it was made with"
        )
    problems = store.structural_problems(checkpoint=False)
    if problems:
        raise StoreDamage(f"{problems[0]}; refusing to measure it (lqcdml verify lists all damage)")
    if store.n_committed == 0:
        raise StoreError(f"store {str(store_path)!r} has no committed configuration to measure")
    return store


@dataclass
class _Measured:
    """What is measured so far: the rows of each configuration from the cut on, the layout
    of each variable (dims, coords, row shape; the last measured configuration's), entries
    and wall time."""

    rows: list[dict[str, np.ndarray]] = field(default_factory=list)
    layout: dict[str, tuple[tuple[str, ...], Any, tuple[int, ...]]] = field(default_factory=dict)
    entries: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class _Job:
    """What measuring configuration ``i`` needs: the store, the plan, the chains to measure
    (``select(i)``, ``None``: all), the device, the noise seed (``seed + i``), the cut and the
    store's ``trajectory`` and ``source`` of each configuration from the cut on."""

    store: EnsembleStore
    plan: list[Callable]
    select: Callable[[int], np.ndarray | None]
    device: torch.device
    seed: int
    first: int
    trajectories: np.ndarray
    sources: np.ndarray
    out: Path


def _measure(
    cfg: RootConfig,
    ensemble: str,
    store_path: Path,
    out: Path,
    hooks: MeasureHooks,
    include_therm: bool,
    expensive: bool,
) -> xr.Dataset:
    from ..assembly import torch_device, torch_threads
    from ..config import replica_seed
    from ..kinds.observables import measurement_plan

    ens = cfg.ensembles[ensemble]
    with torch_threads(cfg.threads):
        store = _open_checked(cfg, ensemble, store_path)
        check_observables_target(out)  # refused now, not after measuring
        meta, n = store.meta, store.n_committed
        plan = [_expensive_kind(cfg, ensemble).expensive_measurement(ens)] if expensive else measurement_plan(ens)
        device = torch_device(cfg.device)
        first = 0 if include_therm else min(ens.chain.n_therm, n - 1)
        replica, n_chains = int(meta["replica"]), store.field_shape[0]
        select = _labelled_chains(cfg, ensemble, replica, n_chains, first) if expensive else (lambda i: None)
        trajectories, sources = record_sources(store, first)
        # noise for stochastic estimators: reproducible per (chain seed, replica, configuration)
        seed = replica_seed(ens.chain.seed, replica) * 100_003
        job = _Job(store, plan, select, device, seed, first, trajectories, sources, out)
        identity = _identity(cfg, ensemble, meta, first, expensive, device.type)
        journal, done = _journal(journal_path(out), identity, trajectories, sources, first, hooks)
        hooks.begin(first + len(done.rows), n, replica)
        _measure_rest(job, journal, done, hooks)
        ds = _dataset(store, done.rows, done.layout, first, replica, n_chains)
        ds.attrs.update(_attrs(cfg, ensemble, store_path, meta, first, expensive, done.seconds, done.entries))
        write_observables(ds, out)
        try:
            remove_journal(journal.path)
        except OSError as exc:  # harmless: a journal of a finished measurement only repeats it
            _tell(hooks, f"could not remove the measurement journal {str(journal.path)!r} ({exc})")
        return ds


def _measure_rest(job: _Job, journal: MeasureJournal, done: _Measured, hooks: MeasureHooks) -> None:
    """Measure the configurations after those ``done`` holds, each committed to ``journal``
    and added to ``done`` (its wall time too) before its progress is reported."""
    n, n_chains, before, t0 = job.store.n_committed, job.store.field_shape[0], done.seconds, time.perf_counter()
    try:
        for i in range(job.first + len(done.rows), n):
            gens = make_generators(job.seed + i, n_chains, job.device)
            row, layout, entries = _measure_one(
                job.store.read_fields(i), job.plan, gens, job.select(i), n_chains, job.device
            )
            done.rows.append(row)
            done.layout.update(layout)
            done.entries += entries
            done.seconds = before + time.perf_counter() - t0
            k = i - job.first
            record = {"trajectory": int(job.trajectories[k]), "source": job.sources[k], "entries": entries}
            _commit(journal, k, done, record, job.out)
            hooks.progress(i + 1, n)
    except BaseException as exc:
        if journal.n_committed == 0 or _failed_itself(exc):  # nothing to resume: nothing left behind
            _remove_quietly(journal.path)
        raise
    done.seconds = before + time.perf_counter() - t0


class JournalWriteError(StoreError):
    """The journal could not be written (a full disk, a read-only file system): what is
    committed stays for a rerun, the observable store is untouched."""


def _failed_itself(exc: BaseException) -> bool:
    """Whether the measurement failed by itself (a damaged configuration, a solver that does
    not converge: one line, nothing left behind) rather than being stopped (killed,
    interrupted, the machine's fault: the journal stays for a rerun)."""
    return isinstance(exc, LqcdmlError) and not isinstance(exc, JournalWriteError)


def _remove_quietly(path: Path) -> None:
    try:
        remove_journal(path)
    except OSError:
        pass  # an empty journal left behind is discarded or continued by the next run


def _measure_one(
    fields_np: np.ndarray,
    plan: list,
    gens: list[torch.Generator],
    chains: np.ndarray | None,
    n_chains: int,
    device: torch.device,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[tuple[str, ...], Any, tuple[int, ...]]], int]:
    """The rows of one configuration (all chains; NaN on chains not in ``chains``, none at all
    if ``chains`` is empty; ``None``: every chain), their layout and the entries measured."""
    fields = torch.from_numpy(fields_np).to(device)
    if chains is not None:  # a sub-batch: the labelled chains of this configuration
        fields, gens = fields[torch.as_tensor(chains, device=device)], [gens[c] for c in chains]
    rows: dict[str, np.ndarray] = {}
    layout: dict[str, tuple[tuple[str, ...], Any, tuple[int, ...]]] = {}
    for m in plan:
        if chains is not None and len(chains) == 0:
            continue  # nothing labelled here: NaN rows, filled in by _dataset
        for name, (values, dims, coords) in m(fields, gens).items():
            row = np.asarray(values)
            if chains is not None:  # back to all chains, NaN where not measured
                full = np.full((n_chains, *row.shape[1:]), np.nan)
                full[chains] = row
                row = full
            rows[name] = row
            layout[name] = (dims, coords, row.shape)
    return rows, layout, n_chains if chains is None else len(chains)


def _commit(journal: MeasureJournal, k: int, done: _Measured, record: dict, out: Path) -> None:
    """Commit entry ``k`` to the journal; a failing disk is a ``JournalWriteError`` (``out`` untouched)."""
    layout = {name: (dims, coords) for name, (dims, coords, _) in done.layout.items()}
    try:
        journal.commit(k, done.rows[k], layout, record, done.seconds)
    except OSError as exc:
        raise JournalWriteError(
            f"cannot write the measurement journal {str(journal.path)!r} ({exc.strerror or exc}); "
            f"{str(out)!r} is untouched (an observable store is replaced only when complete)"
        ) from None


def _plan_names(ens: Any, expensive: bool) -> list[str]:
    """The observables measured: the ``measure`` section's, or the theory's defaults."""
    from ..kinds.observables import OBSERVABLES

    if expensive:
        return ["expensive:trace_inverse_noise"]
    return list(ens.measure.observables) or [k.name for k in OBSERVABLES if ens.theory.name in k.default_for]


def _identity(cfg: RootConfig, ensemble: str, meta: dict, first: int, expensive: bool, device: str) -> dict:
    """What a journal must have been written for to be continued (JSON)."""
    from ..code_digest import source_digest
    from ..config import replica_seed
    from ..config.compose import to_container

    ens = cfg.ensembles[ensemble]
    identity = {
        "config_hash": meta["config_hash"],
        "model_digest": meta.get("model_digest"),
        "replica": int(meta["replica"]),
        "first": first,
        "expensive": expensive,
        "plan": _plan_names(ens, expensive),
        "measure": to_container(ens.measure),
        "estimator": to_container(ens.estimator),
        "solver_tol": getattr(ens.sampler, "solver_tol", None),
        "noise_seed": replica_seed(ens.chain.seed, int(meta["replica"])),
        "device": device,
        "dtype": cfg.dtype,
        "lqcdml_version": __version__,
        "code": source_digest(Path(__file__).parents[1], "lqcdml.cli.measure", version=__version__),
    }
    return json.loads(json.dumps(identity, default=str))


def _difference(ours: Any, theirs: Any, key: str) -> str | None:
    """The first key whose values differ, as ``key = theirs (here ours)``; None if equal."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for sub in [*ours, *(k for k in theirs if k not in ours)]:
            found = _difference(ours.get(sub), theirs.get(sub), f"{key}.{sub}" if key else sub)
            if found:
                return found
        return None
    return None if ours == theirs else f"{key} = {theirs!r} there, {ours!r} here"


def _foreign(journal: MeasureJournal, identity: dict) -> str | None:
    """Why ``journal`` belongs to another measurement; None if it is this one's."""
    found = _difference(identity, journal.identity, "")
    return f"measurement journal {str(journal.path)!r} was written for another measurement ({found})" if found else None


def _changed(
    journal: MeasureJournal, records: dict, trajectories: np.ndarray, sources: np.ndarray, first: int
) -> str | None:
    """Why the journal's ``records`` no longer match the ensemble store's; None if they do."""
    where, k = f"measurement journal {str(journal.path)!r}", journal.n_committed
    if k > len(sources):
        return f"{where} holds {k} configurations, the ensemble store {len(sources)} from configuration {first} on"
    changed = np.flatnonzero((records["trajectory"] != trajectories[:k]) | (records["source"] != sources[:k]))
    if changed.size:
        j = int(changed[0])
        was, now = int(records["trajectory"][j]), int(trajectories[j])
        trajectory = f"trajectory {now}" if was == now else f"trajectory {was}, now {now}"
        return f"{where}: configuration {first + j} ({trajectory}) changed in the ensemble store since it was measured"
    return None


def _journal(
    path: Path, identity: dict, trajectories: np.ndarray, sources: np.ndarray, first: int, hooks: MeasureHooks
) -> tuple[MeasureJournal, _Measured]:
    """The journal to continue and what it holds, or a new one (the old discarded with one line)."""
    if path.exists():
        try:
            journal = MeasureJournal.open(path)
            reason = _foreign(journal, identity)
            if reason is None:
                rows, records = journal.read()
                reason = _changed(journal, records, trajectories, sources, first)
            if reason is None:
                _grow(journal, len(sources))
                return journal, _Measured(rows, journal.layout, int(records["entries"].sum()), journal.seconds)
        except (StoreDamage, OSError) as exc:  # never trusted, never fatal
            reason = str(exc)
        _tell(hooks, f"{reason}; discarded, measuring from configuration {first}")
    try:
        remove_journal(path)
        return MeasureJournal.create(path, identity, len(sources)), _Measured()
    except OSError as exc:
        raise StoreError(f"cannot create the measurement journal {str(path)!r} ({exc.strerror or exc})") from None


def _grow(journal: MeasureJournal, capacity: int) -> None:
    try:
        journal.grow(capacity)
    except OSError as exc:
        raise StoreError(f"cannot grow the measurement journal {str(journal.path)!r} ({exc.strerror or exc})") from None


def _dataset(
    store: EnsembleStore, rows: list[dict[str, np.ndarray]], layout: dict, first: int, replica: int, n_chains: int
) -> xr.Dataset:
    """The measured rows (NaN where a configuration has none) and the chain's records."""
    coords = {
        "config": store.read_records("trajectory")[first:].astype(np.int64),
        "replica": np.arange((replica - 1) * n_chains + 1, replica * n_chains + 1),
    }
    data_vars = {}
    for name, (dims, extra, shape) in layout.items():
        stacked = np.stack([r.get(name, np.full(shape, np.nan)) for r in rows])
        data_vars[name] = (("config", "replica", *dims), stacked)
        coords.update(extra)
    delta_h = store.read_records("delta_H")[first:]
    data_vars["acceptance"] = (("config", "replica"), store.read_records("accepted")[first:])
    data_vars["delta_H"] = (("config", "replica"), delta_h)
    data_vars["exp_minus_delta_H"] = (("config", "replica"), np.exp(-delta_h))
    return xr.Dataset(data_vars, coords=coords)


def _attrs(
    cfg: RootConfig,
    ensemble: str,
    store_path: Path,
    meta: dict,
    first: int,
    expensive: bool,
    seconds: float,
    entries: int,
) -> dict:
    from ..identity import job_provenance

    ens, replica = cfg.ensembles[ensemble], int(meta["replica"])
    return {
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "ensemble_store": str(store_path),
        "config_hash": meta["config_hash"],
        **({"model_digest": meta["model_digest"]} if "model_digest" in meta else {}),
        "job_replica": replica,
        "theory": json.dumps(meta["theory"]),
        "n_therm_configs": ens.chain.n_therm,
        "first_config_measured": first,
        "save_every": ens.chain.save_every,
        "lqcdml_version": __version__,
        "expensive": int(expensive),
        "measure_seconds": seconds,
        "measured_entries": entries,
        "provenance": json.dumps(job_provenance(cfg, ensemble, replica, meta.get("model_digest"))),
    }
