"""A replica's chain from the config and its stores: the ``ChainSpec`` the driver runs, the
store's attributes and the checks that a store continues the same chain, the size limits,
trained models and the configurations of other ensembles read from their stores."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..assembly import build_model, build_sampler, field_dtype, field_shape, initial_fields, torch_device
from ..config.compose import to_container
from ..config.errors import ConfigError
from ..config.schema import EnsembleConfig, RootConfig
from ..config.seeds import replica_seed
from ..identity.expectations import store_expectations
from ..identity.hashes import chain_definition, ensemble_hash, file_digest, training_hash
from ..kinds import SAMPLERS, theory_kind
from ..store import RECORDS, EnsembleStore, StoreError
from ..store.ensemble import compressed_fraction, estimate_disk_bytes
from .chain import ChainSpec, Reprojection
from .checkpoints import read_complete_checkpoint

__all__ = [
    "chain_spec",
    "start_from_store",
    "source_configurations",
    "check_sizes",
    "disk_estimate",
    "store_meta",
    "check_compatible",
    "load_model",
    "FIELD_COPIES",
]


def store_meta(cfg: RootConfig, ensemble: str, replica: int, model_digest: str | None = None) -> dict:
    """The ``lqcdml`` attributes of a new ensemble store (JSON only)."""
    from ..provenance import git_commit

    ens = cfg.ensembles[ensemble]
    meta = {
        "experiment": cfg.experiment,
        "ensemble": ensemble,
        "replica": replica,
        "config": to_container(ens),
        "config_hash": ensemble_hash(ens, cfg.dtype, model_digest),
        "precision": cfg.dtype,
        "device_type": torch.device(cfg.device).type,  # the kind of generator states the chain keeps
        "theory": to_container(ens.theory),
        "version": __version__,
        "git_commit": git_commit(),
    }
    if model_digest is not None:
        meta["model_digest"] = model_digest
    source = ens.chain.start_from
    if source:  # where the chain starts: the last configuration of that chain definition
        src = cfg.ensembles[source]
        meta["start"] = {
            "ensemble": source,
            "config_hash": ensemble_hash(src, cfg.dtype),
            "index": src.chain.n_configs - 1,
        }
    return meta


def _first_difference(a, b, prefix: str = "") -> tuple[str, object, object] | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _first_difference(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
            if diff:
                return diff
        return None
    return None if a == b else (prefix, a, b)


def _check_device_type(meta: dict, old: dict, path: Path) -> None:
    """Refuse to continue on a CPU a chain begun on CUDA, or the reverse: their generators
    are different algorithms (CPU Mersenne twister, CUDA Philox) whose states do not convert.
    Stores written before the device type was recorded are not checked."""
    was, now = old.get("device_type"), meta.get("device_type")
    if was is None or was == now:
        return
    allowed = "device = cpu (--gpus 0)" if was == "cpu" else f"device = {was} or {was}:N (--gpus 1)"
    raise StoreError(
        f"store {str(path)!r} holds a chain generated on {was}, this run is on {now}: its random "
        f"generator states continue only on a {was} device; allowed: {allowed}"
    )


def check_compatible(meta: dict, old: dict, path: Path) -> None:
    """Refuse to continue a store (attributes ``old``) written by another chain definition."""
    if old.get("replica") != meta["replica"]:
        raise StoreError(f"store {str(path)!r} holds replica {old.get('replica')}, not {meta['replica']}")
    if old.get("config_hash") != meta["config_hash"]:
        a = {**chain_definition(old.get("config", {})), "precision": old.get("precision")}
        b = {**chain_definition(meta["config"]), "precision": meta["precision"]}
        diff = _first_difference(a, b)
        if diff is None and old.get("model_digest") != meta.get("model_digest"):
            raise StoreError(
                f"store {str(path)!r} was sampled with model {old.get('model_digest')}, "
                f"not {meta.get('model_digest')}; allowed: the same trained model (a new model needs a new store)"
            )
        where = (
            f"{diff[0]} = {diff[2]!r} but the store was written with {diff[1]!r}"
            if diff
            else f"chain hash {meta['config_hash']} but the store has {old.get('config_hash')} (written by "
            f"lqcdml {old.get('version')}, whose chain hash covered other keys: regenerate it)"
        )
        raise StoreError(
            f"store {str(path)!r} was written by an incompatible config: {where}; "
            "allowed: the same theory, sampler, chain seed and precision (only n_configs may grow)"
        )
    _check_device_type(meta, old, path)
    if old.get("start") != meta.get("start"):
        raise StoreError(
            f"store {str(path)!r} started from {old.get('start')}, this config from {meta.get('start')}; "
            "allowed: the same start (chain.start_from's chain and n_configs; another start needs a new store)"
        )


def load_model(ens: EnsembleConfig, path: str | Path, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The trained float64 model of ``ens`` from a complete checkpoint of the same config."""
    ckpt = read_complete_checkpoint(path, training_hash(ens))
    model = build_model(ens)
    model.load_state_dict(ckpt["trainer"]["model"])
    return model.to(device=device, dtype=torch.float64).eval().requires_grad_(False)  # frozen for sampling


#: copies of the fields a sampler holds at once (fields, momenta, forces, proposals, ...)
FIELD_COPIES = 8


def _memory_bytes(device: str = "cpu") -> int:
    """Memory the fields live in: the GPU's own on CUDA, the machine's otherwise."""
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(dev).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _free_disk_bytes(path: Path) -> int:
    probe = path.resolve()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _compressed_fraction(ens: EnsembleConfig, dtype: torch.dtype) -> float:
    """How far the store's codec compresses this theory's fields: measured on a hot start of
    one chain on a 4^d lattice (thermalised fields are as random as a hot start)."""
    from dataclasses import replace

    from ..lattice import make_generators

    small = replace(
        ens, theory=replace(ens.theory, lattice=[4] * len(ens.theory.lattice)), chain=replace(ens.chain, start="hot")
    )
    sample = initial_fields(small, make_generators(0, 1, torch.device("cpu")), dtype, torch.device("cpu"))
    return compressed_fraction(sample.numpy())


def disk_estimate(
    ens: EnsembleConfig,
    field_shape: tuple[int, ...],
    dtype: torch.dtype,
    store_path: Path,
    n_new: int,
    new_store: bool,
    config_bytes: int | None = None,
) -> int:
    """Bytes the file system allocates for ``n_new`` more configurations of ``ens`` in the store at
    ``store_path`` (with a new store's metadata and checkpoint when ``new_store``)."""
    kind = SAMPLERS.lookup(ens.sampler.name)
    field_bytes = math.prod(field_shape) * torch.empty((), dtype=dtype).element_size()
    if config_bytes is None:
        config_bytes = int(field_bytes * _compressed_fraction(ens, dtype))
    n_records = len(RECORDS) + 2 + len(kind.counters)  # + the cheap observable and the content digest
    # generator states (CPU Mersenne twister: 5056 bytes a chain) and pseudofermion-sized extras
    checkpoint = field_shape[0] * 5056 + field_bytes // max(field_shape[1] if len(field_shape) > 1 else 1, 1)
    return estimate_disk_bytes(store_path.parent, config_bytes, field_shape, n_new, n_records, checkpoint, new_store)


def check_sizes(
    cfg: RootConfig,
    ensemble: str,
    field_shape: tuple[int, ...],
    dtype: torch.dtype,
    store_path: Path,
    n_new: int,
    new_store: bool = True,
) -> None:
    """Refuse a run whose fields do not fit the memory limit, or whose ``n_new`` new
    configurations do not fit the disk limit (as the file system allocates them,
    ``store.estimate_disk_bytes``), before anything is created."""
    p = f"ensembles.{ensemble}."
    ens = cfg.ensembles[ensemble]
    itemsize = torch.empty((), dtype=dtype).element_size()
    field_bytes = math.prod(field_shape) * itemsize
    memory = cfg.limits.memory_gb * 1e9 or _memory_bytes(cfg.device)
    own = "the machine memory" if torch.device(cfg.device).type == "cpu" else f"the memory of {cfg.device}"
    if FIELD_COPIES * field_bytes > memory:
        raise ConfigError(
            f"{p}chain.n_chains x {p}theory.lattice = {field_shape[0]} x {list(ens.theory.lattice)} "
            f"needs about {FIELD_COPIES * field_bytes / 1e9:.3g} GB of field memory ({FIELD_COPIES} copies of "
            f"{field_bytes / 1e9:.3g} GB); allowed: at most {memory / 1e9:.3g} GB "
            f"({'limits.memory_gb' if cfg.limits.memory_gb else own + '; raise with limits.memory_gb'})"
        )
    if n_new <= 0:
        return
    config_bytes = int(field_bytes * _compressed_fraction(ens, dtype))
    needed = disk_estimate(ens, field_shape, dtype, store_path, n_new, new_store, config_bytes)
    disk = cfg.limits.disk_gb * 1e9 or _free_disk_bytes(store_path.parent)
    if needed > disk:
        raise ConfigError(
            f"{p}chain.n_configs = {ens.chain.n_configs} needs about {needed / 1e9:.3g} GB more disk for "
            f"{n_new} configurations of {field_bytes / 1e9:.3g} GB ({config_bytes / 1e9:.3g} GB compressed, "
            f"as the file system allocates them); allowed: at most {disk / 1e9:.3g} GB "
            f"({'limits.disk_gb' if cfg.limits.disk_gb else 'the free disk space; raise with limits.disk_gb'})"
        )


def _other_store(
    cfg: RootConfig, path: Path, flag: str, key: str, source: str, replica: int | None = None
) -> EnsembleStore:
    """The store at ``path`` (given as ``flag``), checked to hold ensemble ``source`` (named by
    the config key ``key``) of this experiment, and replica ``replica`` if given."""
    store = EnsembleStore.open(path)
    meta = store.meta
    found = (meta.get("ensemble"), meta.get("experiment")) + ((meta.get("replica"),) if replica else ())
    if found != (source, cfg.experiment) + ((replica,) if replica else ()):
        which = f"replica {meta.get('replica')} of " if replica else ""
        wanted = f"replica {replica} of " if replica else "stores of "
        raise StoreError(
            f"{flag} {str(path)!r} holds {which}ensemble {meta.get('ensemble')!r} of "
            f"{meta.get('experiment')!r}; allowed: {wanted}{key} = {source!r} of {cfg.experiment!r}"
        )
    return store


def start_from_store(
    cfg: RootConfig, ensemble: str, replica: int, path: Path, n_chains: int, dtype: torch.dtype, device
) -> torch.Tensor:
    """The last configuration of replica ``replica`` of ``chain.start_from`` (first ``n_chains``
    chains), read from its store at ``path``."""
    source = cfg.ensembles[ensemble].chain.start_from
    store = _other_store(cfg, path, "--start-store", "chain.start_from", source, replica)
    if store.n_committed < 1:
        raise StoreError(f"--start-store {str(path)!r} has no configuration to start from")
    fields = torch.from_numpy(store.read_fields(store.n_committed - 1))[:n_chains]
    return fields.to(device=device, dtype=dtype)


def source_configurations(cfg: RootConfig, source: str, stores: list[Path]) -> torch.Tensor:
    """The thermalised configurations (past ``chain.n_therm``) of ``train.source``'s stores,
    every chain of every store in one batch ``[n, ...]``."""
    if not stores:
        raise StoreError(f"train.source = {source!r}: no --source-store given; allowed: its ensemble stores")
    n_therm = cfg.ensembles[source].chain.n_therm
    fields = []
    for path in stores:
        store = _other_store(cfg, path, "--source-store", "train.source", source)
        if store.n_committed <= n_therm:
            raise StoreError(
                f"--source-store {str(path)!r} has {store.n_committed} configurations; allowed: more "
                f"than chain.n_therm = {n_therm} of {source!r}"
            )
        fields += [torch.from_numpy(store.read_fields(i)) for i in range(n_therm, store.n_committed)]
    return torch.cat(fields)


def chain_spec(
    cfg: RootConfig,
    ensemble: str,
    replica: int,
    model_path: str | Path | None = None,
    *,
    store_path: str | Path,
    start_store: str | Path | None = None,
) -> ChainSpec:
    """The chain of replica ``replica`` of ``ensemble``: sampler, start, store layout, checks.

    ``start_store``: the store of replica ``replica`` of ``chain.start_from`` (read only
    when the chain starts)."""
    ens = cfg.ensembles[ensemble]
    if bool(ens.chain.start_from) != (start_store is not None):
        raise StoreError(f"--start-store: needed exactly when chain.start_from is set (it is {ens.chain.start_from!r})")
    if not 1 <= replica <= ens.chain.replicas:
        raise StoreError(f"--replica = {replica}; allowed: 1..{ens.chain.replicas} (chain.replicas)")
    device = torch_device(cfg.device)
    kind = SAMPLERS.lookup(ens.sampler.name)
    model, digest = None, None
    if kind.needs_model:
        if model_path is None:
            raise StoreError(f"sampler.name = {kind.name!r} needs --model (the checkpoint of lqcdml train)")
        model = load_model(ens, model_path, device)
        digest = file_digest(model_path)
    elif model_path is not None:
        raise StoreError(
            f"--model = {str(model_path)!r}; allowed: only for samplers that use a model "
            f"({', '.join(k.name for k in SAMPLERS if k.needs_model)})"
        )
    dtype = field_dtype(ens.theory, cfg.dtype)
    shape = field_shape(ens.theory, ens.chain.n_chains)
    store_path = Path(store_path)
    exists = (store_path / "zarr.json").is_file()
    committed = EnsembleStore.open(store_path).n_committed if exists else 0
    check_sizes(cfg, ensemble, shape, dtype, store_path, max(ens.chain.n_configs - committed, 0), new_store=not exists)
    meta = store_meta(cfg, ensemble, replica, digest)
    return ChainSpec(
        sampler=build_sampler(ens, model, dtype, device),
        field_shape=shape,
        dtype=str(np.dtype(torch.empty((), dtype=dtype).numpy().dtype)),
        seed=replica_seed(ens.chain.seed, replica),
        default_start=(
            (lambda gens: start_from_store(cfg, ensemble, replica, Path(start_store), len(gens), dtype, device))
            if start_store is not None
            else (lambda gens: initial_fields(ens, gens, dtype, device))
        ),
        observable=kind.cheap_observable(ens.theory),
        meta=meta,
        save_every=ens.chain.save_every,
        reprojection=Reprojection(theory_kind(ens.theory).group(ens.theory), 1e-12 if cfg.dtype == "float64" else 1e-5),
        device=device,
        check_compatible=lambda old: check_compatible(meta, old, store_path),
        counters=kind.counters,
        expectations=store_expectations,
    )
