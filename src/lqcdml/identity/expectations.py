"""What a store must hold, from the chain definition it stores (for ``verify`` and ``generate``).

The store layer checks a store against ``StoreExpectations``; this module derives them from
the store's own attributes: the stored ensemble config (re-hashed against ``config_hash``),
its sampler's declared records and cheap observable, the field shape and dtype its theory
and precision give, and the trajectory counter its ``save_every`` gives. Stores of imported
gauge files (``config_hash = "imported"``) hold no chain: their records are fixed.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config.errors import ConfigError
from ..config.schema import EnsembleConfig
from ..kinds import SAMPLERS, theory_kind, type_ensemble
from ..lattice import SU
from ..observables import plaquette
from ..store.ensemble import record_layout
from ..store.verify import StoreExpectations
from .hashes import stored_chain_hash

__all__ = ["store_expectations"]


def _numpy(fn):
    """A torch observable as a function of numpy fields ``[B, ...] -> [B]``."""
    return lambda fields: fn(torch.from_numpy(np.ascontiguousarray(fields))).detach().cpu().numpy()


def _imported(meta: dict) -> StoreExpectations:
    theory = meta.get("theory") or {}
    n, lattice = theory.get("n_colors"), theory.get("lattice")
    layout = record_layout("plaquette", (), digest=meta.get("format_version", 1) >= 2)
    shape = (1, len(lattice), *lattice, n, n) if isinstance(lattice, list) and isinstance(n, int) else None
    group = SU(n) if isinstance(n, int) and n >= 2 else None
    return StoreExpectations(
        records=tuple(layout),
        field_shape=shape,
        field_dtype="complex128",
        observable_name="plaquette",
        observable=_numpy(lambda u: plaquette(u, group)) if group is not None else None,
        trajectory=lambda i: i,
    )


def _ensemble(config: dict) -> EnsembleConfig | None:
    """The typed ensemble config of a stored one (None where this version cannot read it)."""
    try:
        return type_ensemble(config, "config", lenient=True)
    except ConfigError:  # a config of another version: its hash is checked all the same
        return None


def store_expectations(meta: dict) -> StoreExpectations:
    """The expectations of the store whose ``lqcdml`` attributes are ``meta``."""
    if meta.get("config_hash") == "imported" and meta.get("chain_state") is False:
        return _imported(meta)
    config = meta.get("config")
    if config is None and "experiment" not in meta:
        return StoreExpectations()  # a store written through the library API without a chain config
    if not isinstance(config, dict):
        return StoreExpectations(problems=(f"store attributes hold no chain config (config = {config!r})",))
    chain_hash = stored_chain_hash(meta)
    ens = _ensemble(config)
    kind = SAMPLERS.get(ens.sampler.name) if ens is not None else None
    if ens is None or kind is None or meta.get("precision") not in ("float64", "float32"):
        return StoreExpectations(chain_hash=chain_hash)
    name, fn = kind.cheap_observable(ens.theory)
    digest = meta.get("format_version", 1) >= 2
    records = tuple(record_layout(name, kind.counters, digest))
    if not digest and list(meta.get("records", [])) == list(record_layout(name, (), False)):
        records = tuple(record_layout(name, (), False))  # format 1 stores written before the counters
    theory = theory_kind(ens.theory)
    dtype = theory.field_dtype(ens.theory, meta["precision"])
    save_every = int(ens.chain.save_every)
    return StoreExpectations(
        records=records,
        field_shape=theory.field_shape(ens.theory, int(ens.chain.n_chains)),
        field_dtype=str(torch.empty((), dtype=dtype).numpy().dtype),
        observable_name=name,
        observable=_numpy(fn),
        trajectory=lambda i: (i + 1) * save_every,
        steps_per_config=save_every,
        chain_hash=chain_hash,
    )
