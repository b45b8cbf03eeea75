"""Advance any sampler's chain into an ensemble store, resuming from the last commit.

The store holds the fields of every committed configuration and, beside them, the
chain state of the last commit (``ChainState.checkpoint``: RNG states, counters,
pseudofermion fields, sampler extras). ``run_chain_into_store`` continues from there, so
a killed run, rerun, produces the same chain bit for bit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from ..lattice import Manifold, make_generators
from ..samplers import ChainState, Sampler, StartFields, StepInfo
from ..solvers import SolverError
from ..store import EnsembleStore, StoreDamage, StoreError, writer_lock
from ..store.verify import QUICK_TAIL, StoreExpectations, first_problem, verify_store

__all__ = ["ChainSpec", "ChainHooks", "SilentHooks", "Reprojection", "run_chain_into_store", "resume_state"]


class ChainHooks(Protocol):
    """What a caller sees of a running chain (progress bars, logs)."""

    def begin(self, done: int, total: int) -> None: ...

    def progress(self, done: int, total: int, acceptance: float, delta_h: float) -> None: ...

    def message(self, text: str) -> None: ...


class SilentHooks:
    """Hooks that report nothing."""

    def begin(self, done: int, total: int) -> None:
        pass

    def progress(self, done: int, total: int, acceptance: float, delta_h: float) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class Reprojection:
    """Links that drift off the group by more than ``tol`` (checked once per stored
    configuration) are projected back; the largest drift and the count are reported."""

    group: Manifold
    tol: float

    def __call__(self, state: ChainState) -> tuple[ChainState, float, bool]:
        drift = float(self.group.deviation(state.fields))
        if drift > self.tol:
            return replace(state, fields=self.group.project(state.fields)), drift, True
        return state, drift, False


@dataclass(frozen=True)
class ChainSpec:
    """One replica's chain, independent of how it was configured.

    ``field_shape`` is ``[B, ...]`` and ``dtype`` a numpy dtype name (for a new store);
    ``seed`` seeds the ``B`` per-chain generators; ``default_start`` draws start fields
    (the sampler decides whether to use it); ``observable`` is the cheap per-configuration
    observable ``(name, fields -> [B])`` recorded beside the fields; ``meta`` the JSON
    attributes of a new store, whose ``config_hash`` (the chain hash) and ``model_digest`` (if any) a store
    must match to be continued.
    """

    sampler: Sampler
    field_shape: tuple[int, ...]
    dtype: str
    seed: int
    default_start: StartFields
    observable: tuple[str, Callable[[torch.Tensor], torch.Tensor]]
    meta: Mapping[str, Any]
    save_every: int = 1
    reprojection: Reprojection | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: (existing store's meta) -> None, raising StoreError when it is another chain
    check_compatible: Callable[[dict], None] | None = None
    #: ``StepInfo.counters`` recorded per configuration (summed over its ``save_every`` steps)
    counters: tuple[str, ...] = ()
    #: (existing store's meta) -> what the store must hold (checked before it is continued)
    expectations: Callable[[dict], StoreExpectations] | None = None


#: how much of an existing store ``run_chain_into_store`` checks before it continues it
VERIFY_MODES = ("full", "tail")


def _check_same_chain(spec: ChainSpec, store: EnsembleStore) -> None:
    """The spec's own check, or by default the chain hash, replica and model digest."""
    old = store.meta
    if spec.check_compatible is not None:
        spec.check_compatible(old)
        return
    for key in ("config_hash", "replica", "model_digest"):
        if old.get(key) != spec.meta.get(key):
            raise StoreError(
                f"store {str(store.path)!r} holds another chain ({key} {old.get(key)!r}, "
                f"this run {spec.meta.get(key)!r}); allowed: the same chain definition (only n_configs may grow)"
            )


def _check_before_writing(spec: ChainSpec, path: Path, verify: str) -> EnsembleStore:
    """The existing store at ``path``, opened for writing only after everything a
    continuation relies on was checked read-only: its metadata, records, checkpoint, the
    stored config against its hash, and its configurations (all, or with ``verify =
    "tail"`` the last ones) through their checksums and content digests. Any damage raises
    ``StoreDamage`` with the store unchanged; a store of another chain ``StoreError``."""
    reader = EnsembleStore.open(path)
    expect = spec.expectations(reader.meta) if spec.expectations is not None else None
    report = verify_store(path, expect, tail=QUICK_TAIL if verify == "tail" else None, allow_resize=True)
    if not report["ok"]:
        raise StoreDamage(
            f"{first_problem(report)}; refusing to extend it, the store is unchanged (lqcdml verify lists all damage)"
        )
    _check_same_chain(spec, reader)
    if reader.field_shape != tuple(spec.field_shape):
        raise StoreDamage(
            f"store {str(path)!r}: fields of shape {list(reader.field_shape)} but its chain "
            f"definition gives {list(spec.field_shape)}; the store is damaged"
        )
    return EnsembleStore.open(path, mode="r+")


def _open_or_create(
    spec: ChainSpec, path: Path, n_configs: int, hooks: ChainHooks, verify: str = "full"
) -> EnsembleStore:
    if path.exists():
        store = _check_before_writing(spec, path, verify)
        if n_configs < store.n_committed:
            raise StoreError(
                f"chain.n_configs = {n_configs}; allowed: >= {store.n_committed}, the configurations "
                f"already committed in {str(path)!r}"
            )
        repaired = store.finish_resize()
        if repaired is not None:
            hooks.message(f"store {str(path)!r}: finished a resize that was interrupted (capacity {repaired})")
        store.clean_partial_files()
        if n_configs > store.capacity:
            store.resize(n_configs)
        return store
    return EnsembleStore.create(
        path,
        field_shape=spec.field_shape,
        dtype=spec.dtype,
        capacity=n_configs,
        meta=dict(spec.meta),
        observable=spec.observable[0],
        counters=spec.counters,
    )


def resume_state(store: EnsembleStore, device: torch.device | str = "cpu") -> ChainState:
    """The chain state of a store's last commit."""
    ckpt = store.checkpoint()
    if ckpt is None:
        raise StoreError(f"store {str(store.path)!r} has no commit to resume from")
    return ChainState.from_checkpoint(store.read_fields(store.n_committed - 1), ckpt["arrays"], ckpt["attrs"], device)


def _nonfinite(info: StepInfo, index: int, hooks: ChainHooks) -> int:
    """Non-finite energies (already rejected by the Metropolis test) are logged and counted."""
    bad = (~torch.isfinite(info.delta_H.detach())).nonzero().flatten().tolist()
    if bad:
        hooks.message(f"configuration {index}: non-finite delta_H in chains {bad}: rejected, fields kept")
    return len(bad)


def run_chain_into_store(
    spec: ChainSpec, path: str | Path, n_configs: int, hooks: ChainHooks | None = None, verify: str = "full"
) -> dict[str, Any]:
    """Advance the chain of ``spec`` in the store at ``path`` to ``n_configs`` configurations.

    Creates the store, or continues it from its last commit after checking that it holds
    the same chain and verifying it (``verify``: ``full`` reads every configuration,
    ``tail`` the last ones; either way nothing is written to a damaged store). The run
    holds the store's writer lock throughout: a second writer of the same store stops with
    ``StoreError`` naming this one. Each configuration is ``save_every`` Markov steps; it is committed
    with its records and the chain state. A solver that does not converge raises
    ``SolverError`` naming the configuration (committed data intact). Returns a summary.
    """
    path = Path(path)
    if verify not in VERIFY_MODES:
        raise StoreError(f"verify = {verify!r}; allowed: {', '.join(VERIFY_MODES)}")
    with writer_lock(path) as lock:
        return _run_locked(spec, path, n_configs, hooks or SilentHooks(), verify, lock)


def _run_locked(spec: ChainSpec, path: Path, n_configs: int, hooks: ChainHooks, verify: str, lock) -> dict[str, Any]:
    store = _open_or_create(spec, path, n_configs, hooks, verify)
    lock.hold_store()  # a new store is locked as soon as it exists
    start = store.n_committed
    hooks.begin(start, n_configs)
    if start == 0:
        gens = make_generators(spec.seed, spec.field_shape[0], spec.device)
        state = spec.sampler.start(gens, spec.default_start)
        before = 0.0
    else:
        state = resume_state(store, spec.device)
        ckpt = store.checkpoint()  # cached by the store
        assert ckpt is not None  # resume_state found it
        before = float(ckpt["attrs"].get("seconds", 0.0))
    obs_name, obs_fn = spec.observable
    # counters of the store (one written before the spec declared them records none)
    recorded = [c for c in spec.counters if c in store.record_names]
    faults = {"nonfinite_rejected": 0, "reprojections": 0, "max_drift": 0.0}
    t0 = time.perf_counter()
    for index in range(start, n_configs):
        accepted = torch.zeros(state.n_chains, dtype=torch.float64)
        counts = dict.fromkeys(recorded, 0)
        for _ in range(spec.save_every):
            try:
                state, info = spec.sampler.step(state)
            except SolverError as exc:
                raise SolverError(
                    f"configuration {index} (trajectory {state.trajectory + 1}) of {str(path)!r}: "
                    f"{exc}; the {index} committed configurations are intact",
                    exc.residual,
                    exc.iterations,
                ) from None
            faults["nonfinite_rejected"] += _nonfinite(info, index, hooks)
            accepted += info.accepted.to("cpu", torch.float64)
            for name in recorded:
                counts[name] += int(info.counters[name])
        if spec.reprojection is not None:
            state, drift, projected = spec.reprojection(state)
            faults["max_drift"] = max(faults["max_drift"], drift)
            if projected:
                faults["reprojections"] += 1
                hooks.message(
                    f"configuration {index}: links drifted off the group by {drift:.3g} "
                    f"(> {spec.reprojection.tol:g}): reprojected"
                )
        records: dict[str, Any] = {
            "trajectory": state.trajectory,
            "accepted": (accepted / spec.save_every).numpy(),
            "delta_H": info.delta_H.detach().cpu().numpy(),
            obs_name: obs_fn(state.fields).detach().cpu().numpy(),
            **counts,
        }
        arrays, attrs = state.checkpoint()
        store.commit(
            index,
            state.fields.detach().cpu().numpy(),
            records,
            arrays,
            {**attrs, "seconds": before + time.perf_counter() - t0},
        )
        hooks.progress(index + 1, n_configs, float(records["accepted"].mean()), float(np.mean(records["delta_H"])))
    seconds = time.perf_counter() - t0
    acc = store.read_records("accepted")
    n_traj = store.n_committed * spec.save_every
    per_traj = {c: float(store.read_records(c).sum()) / n_traj for c in recorded} if n_traj else {}
    return {
        "store": str(path),
        "n_committed": store.n_committed,
        "resumed_from": start,
        "acceptance": float(acc.mean()) if acc.size else None,
        "seconds": seconds,
        "seconds_total": before + seconds,
        "counters_per_trajectory": per_traj,
        **faults,
    }
