"""``lqcdml generate``: run (or resume) one replica of an ensemble into a Zarr store."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import RootConfig, ensemble_hash, to_container
from ..config.compose import chain_definition
from ..config.build import (
    build_group,
    build_sampler,
    cheap_observable,
    initial_fields,
    replica_seed,
    site_shape,
    torch_dtype,
)
from ..lattice import make_generators
from ..samplers import ChainState
from ..solvers import SolverError
from ..store import EnsembleStore, StoreError
from .progress import Progress
from .provenance import git_commit, write_json_atomic

__all__ = ["generate", "check_compatible", "store_meta"]


def store_meta(cfg: RootConfig, ensemble: str, replica: int) -> dict:
    """The ``lqcdml`` attributes of a new ensemble store (JSON only)."""
    ens = cfg.ensembles[ensemble]
    return {
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "replica": replica,
        "config": to_container(ens),
        "config_hash": ensemble_hash(ens, cfg.dtype),
        "precision": cfg.dtype,
        "theory": to_container(ens.theory),
        "version": __version__,
        "git_commit": git_commit(),
    }


def _first_difference(a, b, prefix: str = "") -> tuple[str, object, object] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
            if diff:
                return diff
        return None
    return None if a == b else (prefix, a, b)


def check_compatible(store: EnsembleStore, meta: dict) -> None:
    """Refuse to continue a store written by a different chain definition."""
    old = store.meta
    if old.get("replica") != meta["replica"]:
        raise StoreError(
            f"store {str(store.path)!r} holds replica {old.get('replica')}, not {meta['replica']}"
        )
    if old.get("config_hash") != meta["config_hash"]:
        a = {**chain_definition(old.get("config", {})), "precision": old.get("precision")}
        b = {**chain_definition(meta["config"]), "precision": meta["precision"]}
        diff = _first_difference(a, b)
        where = f"{diff[0]} = {diff[2]!r} but the store was written with {diff[1]!r}" if diff else "config hash"
        raise StoreError(
            f"store {str(store.path)!r} was written by an incompatible config: {where}; "
            "allowed: the same theory, sampler, chain seed and precision (only n_configs may grow)"
        )


def _state_from_store(store: EnsembleStore, ckpt: dict, device) -> ChainState:
    fields = torch.from_numpy(store.read_fields(store.n_committed - 1)).to(device)
    arrays = ckpt["arrays"]
    extra = {k[len("extra_"):]: torch.from_numpy(v).to(device) for k, v in arrays.items() if k.startswith("extra_")}
    return ChainState(
        fields=fields,
        rng_states=tuple(torch.from_numpy(s.copy()) for s in arrays["rng_states"]),
        trajectory=int(ckpt["attrs"]["trajectory"]),
        n_accepted=torch.from_numpy(arrays["n_accepted"].copy()),
        extra=extra,
    )


def _log_nonfinite(info, faults: dict, index: int, bar) -> None:
    """Non-finite energies (already rejected by the Metropolis test) are logged and counted."""
    bad = (~torch.isfinite(info.delta_H.detach())).nonzero().flatten().tolist()
    if bad:
        faults["nonfinite_rejected"] += len(bad)
        bar.message(f"configuration {index}: non-finite delta_H in chains {bad}: rejected, fields kept")


def _reproject(state: ChainState, group, drift_tol: float, faults: dict, index: int, bar) -> ChainState:
    """Links drifted off the group (checked once per stored configuration) are reprojected
    and the drift reported."""
    if hasattr(group, "deviation"):
        drift = float(group.deviation(state.fields))
        faults["max_drift"] = max(faults["max_drift"], drift)
        if drift > drift_tol:
            faults["reprojections"] += 1
            bar.message(f"configuration {index}: links drifted off the group by {drift:.3g} "
                        f"(> {drift_tol:g}): reprojected")
            state = replace(state, fields=group.project(state.fields))
    return state


def generate(
    cfg: RootConfig,
    ensemble: str,
    replica: int,
    store_path: Path,
    manifest: Path | None = None,
    progress: bool | None = None,
    model_path: Path | None = None,
) -> dict:
    """Advance replica ``replica`` of ``ensemble`` to ``chain.n_configs`` configurations.

    Creates the store, or resumes it from its last commit after checking that it was
    written by the same chain definition. Returns (and writes to ``manifest``) a JSON
    summary.
    """
    ens = cfg.ensembles[ensemble]
    if not 1 <= replica <= ens.chain.replicas:
        raise StoreError(f"--replica = {replica}; allowed: 1..{ens.chain.replicas} (chain.replicas)")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StoreError("device = 'cuda' but torch sees no CUDA device; allowed here: cpu")
    torch.set_num_threads(cfg.threads)
    meta = store_meta(cfg, ensemble, replica)
    model = None
    if ens.sampler.name == "flow":
        from .train import file_digest, load_model

        if model_path is None:
            raise StoreError("sampler.name = 'flow' needs --model (the checkpoint of lqcdml train)")
        model = load_model(ens, model_path, device)
        meta["model_digest"] = file_digest(model_path)
    group = build_group(ens.theory)
    dtype = torch_dtype(group, cfg.dtype)
    n_target = ens.chain.n_configs
    obs_name, obs_fn = cheap_observable(ens.theory)

    if store_path.exists():
        store = EnsembleStore.open(store_path, mode="r+")
        check_compatible(store, meta)
        if store.meta.get("model_digest") != meta.get("model_digest"):
            raise StoreError(
                f"store {str(store_path)!r} was sampled with model {store.meta.get('model_digest')}, "
                f"not {meta.get('model_digest')}; allowed: the same trained model (a new model needs a new store)"
            )
        if n_target < store.n_committed:
            raise StoreError(
                f"chain.n_configs = {n_target}; allowed: >= {store.n_committed}, the configurations "
                f"already committed in {str(store_path)!r}"
            )
        store.clean_partial_files()
        if n_target > store.capacity:
            store.resize(n_target)
    else:
        n_chains = ens.chain.n_chains
        field_shape = (n_chains, *site_shape(ens.theory))
        if group.internal_ndim:
            field_shape += (group.n, group.n)
        np_dtype = str(torch.empty((), dtype=dtype).numpy().dtype)
        store = EnsembleStore.create(
            store_path, field_shape=field_shape, dtype=np_dtype, capacity=n_target, meta=meta,
            observable=obs_name,
        )

    sampler = build_sampler(ens, model)
    seed = replica_seed(ens.chain.seed, replica)
    start = store.n_committed
    if start == 0:
        gens = make_generators(seed, ens.chain.n_chains, device)
        if hasattr(sampler, "initial_fields"):  # flow samplers start from a flow draw
            fields = sampler.initial_fields(gens).to(dtype)
        else:
            fields = initial_fields(ens, gens, dtype, device)
        state = ChainState(
            fields=fields,
            rng_states=tuple(g.get_state() for g in gens),
            n_accepted=torch.zeros(ens.chain.n_chains, dtype=torch.int64),
        )
        before = 0.0  # wall time of earlier runs that built this store
    else:
        ckpt = store.checkpoint()
        state = _state_from_store(store, ckpt, device)
        before = float(ckpt["attrs"].get("seconds", 0.0))
    if hasattr(sampler, "prepare"):  # samplers that keep derived per-chain data
        state = sampler.prepare(state)

    t0 = time.perf_counter()
    bar = Progress(total=n_target, initial=start, label=f"{ensemble} r{replica:02d}", enabled=progress)
    faults = {"nonfinite_rejected": 0, "reprojections": 0, "max_drift": 0.0}
    drift_tol = 1e-12 if cfg.dtype == "float64" else 1e-5
    for index in range(start, n_target):
        accepted = torch.zeros(ens.chain.n_chains, dtype=torch.float64)
        for _ in range(ens.chain.save_every):
            try:
                state, info = sampler.step(state)
            except SolverError as exc:
                raise SolverError(
                    f"configuration {index} (trajectory {state.trajectory + 1}) of {str(store_path)!r}: "
                    f"{exc}; the {index} committed configurations are intact",
                    exc.residual,
                    exc.iterations,
                ) from None
            _log_nonfinite(info, faults, index, bar)
            accepted += info.accepted.to("cpu", torch.float64)
        state = _reproject(state, group, drift_tol, faults, index, bar)
        records = {
            "trajectory": state.trajectory,
            "accepted": (accepted / ens.chain.save_every).numpy(),
            "delta_H": info.delta_H.detach().cpu().numpy(),
            obs_name: obs_fn(state.fields).detach().cpu().numpy(),
        }
        ckpt_arrays = {
            "rng_states": torch.stack(list(state.rng_states)).numpy(),
            "n_accepted": state.n_accepted.numpy(),
            **{f"extra_{k}": v.detach().cpu().numpy() for k, v in state.extra.items()},
        }
        store.commit(
            index,
            state.fields.detach().cpu().numpy(),
            records,
            ckpt_arrays,
            {"trajectory": state.trajectory, "seconds": before + time.perf_counter() - t0},
        )
        bar.update(index + 1, acceptance=float(records["accepted"].mean()),
                   dH=float(np.mean(records["delta_H"])))
    bar.close()

    acc = store.read_records("accepted")
    summary = {
        "store": str(store_path),
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "replica": replica,
        "n_committed": store.n_committed,
        "resumed_from": start,
        "config_hash": meta["config_hash"],
        "acceptance": float(acc.mean()) if acc.size else None,
        "seconds": time.perf_counter() - t0,
        "seconds_total": before + time.perf_counter() - t0,
        **faults,
        "version": __version__,
    }
    if manifest is not None:
        write_json_atomic(manifest, summary)
    return summary
