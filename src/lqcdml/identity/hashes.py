"""Every hash of the package: chain definitions, trained models, files.

- The chain hash (``ensemble_hash``) covers what determines one replica's Markov chain:
  the theory, the sampler's name, the sampler keys it reads and its options, the chain
  settings except its length, thermalisation cut and number of replicas (replica ``r``
  of a run with 1 replica is the same chain as replica ``r`` of a run with 2), the
  precision, and for samplers that need a model the model (the keys its kind reads), the
  training settings and the digest of the trained model's file: two stores sampled with
  different weights have different chain hashes. Measurements never touch the chain.
  A store, an observable store or an estimate records its chain hash and, for a sampler
  with a model, the ``model_digest``; ``matches_chain`` checks such a record against a config.
- The training hash covers the theory, the model and the training settings (the keys the
  model kind's training reads); for SLHMC effective actions also the sampler (``m_eff``
  and the molecular dynamics the online training runs).
- ``file_digest``: the content of a file (a trained model in a store's metadata).

Hashes see the resolved config as plain data. The theory section enters in the form every
store so far was hashed with: one flat section holding the keys of all built-in theories
(``HASHED_THEORY_KEYS``, each at its value or, where the theory kind has no such key, at the
flat section's old default). A theory kind's own keys beyond those enter as they are.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from ..config.compose import to_container
from ..kinds import MODELS, SAMPLERS, TRAINERS
from ..kinds.sections import OPTION_KEYS_ADDED

__all__ = [
    "chain_definition",
    "model_definition",
    "training_definition",
    "ensemble_hash",
    "matches_chain",
    "training_hash",
    "file_digest",
    "stored_chain_hash",
    "CHAIN_KEYS_IGNORED",
    "HASHED_THEORY_KEYS",
]

#: chain keys that do not change the chain of a replica
CHAIN_KEYS_IGNORED = ("n_configs", "n_therm", "replicas")
#: chain keys added after stores were written: left out at their default, so that the
#: hashes of existing stores stay valid
CHAIN_KEYS_ADDED = {"start_from": ""}
#: sampler keys added after stores were written: left out at their default (as chain keys)
SAMPLER_KEYS_ADDED = {"md_solver_tol": None}
#: the flat theory section every chain hash has covered: its keys and their defaults
HASHED_THEORY_KEYS = {
    "name": "u1",
    "lattice": [8, 8],
    "beta": 1.0,
    "n_colors": 3,
    "m2": 1.0,
    "lam": 0.0,
    "convention": "flow",
    "fermion": "none",
    "fermion_mass": 0.3,
    "n_flavours": 4,
    "antiperiodic": True,
}


def _hashed_theory(theory: dict) -> dict:
    """The theory section in its hashed form (``HASHED_THEORY_KEYS`` filled in)."""
    return {**copy.deepcopy(HASHED_THEORY_KEYS), **dict(theory)}


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def model_definition(model: dict) -> dict:
    """A model's settings restricted to the keys its kind reads (hashes see only these)."""
    kind = MODELS.get(model.get("kind"))
    if kind is None:  # an unknown kind (a foreign or old store): every key counts
        return dict(model)
    return {k: v for k, v in dict(model).items() if k == "kind" or k in kind.reads}


def training_definition(model: dict, train: dict) -> dict:
    """Training settings restricted to the keys that determine the trained model (its
    trainer kind's ``hashed``)."""
    kind = MODELS.get(model.get("kind"))
    trainer = TRAINERS.get(kind.trainer) if kind is not None else None
    if trainer is None:
        return dict(train)
    return {k: v for k, v in dict(train).items() if k in trainer.hashed}


def _without_added_defaults(sampler: dict) -> dict:
    """``sampler`` without the ``SAMPLER_KEYS_ADDED`` that sit at their default."""
    return {k: v for k, v in sampler.items() if k not in SAMPLER_KEYS_ADDED or v != SAMPLER_KEYS_ADDED[k]}


def chain_definition(ensemble: dict) -> dict:
    """The part of a (container) ensemble config that determines one replica's chain."""
    data = copy.deepcopy(dict(ensemble))
    chain = data.get("chain", {})
    for key in CHAIN_KEYS_IGNORED:
        chain.pop(key, None)
    for key, default in CHAIN_KEYS_ADDED.items():
        if chain.get(key, default) == default:
            chain.pop(key, None)
    data.pop("measure", None)
    if isinstance(data.get("theory"), dict):
        data["theory"] = _hashed_theory(data["theory"])
    sampler = data.get("sampler", {})
    kind = SAMPLERS.get(sampler.get("name", "hmc"))
    if kind is None:  # unknown sampler: keep everything it has
        return data
    options = {
        k: v
        for k, v in dict(sampler.get("options") or {}).items()
        if OPTION_KEYS_ADDED.get(kind.name, {}).get(k, object()) != v
    }
    data["sampler"] = _without_added_defaults({k: v for k, v in sampler.items() if k == "name" or k in kind.reads})
    if options:
        data["sampler"]["options"] = options
    if kind.needs_model:
        data["train"] = training_definition(data.get("model", {}), data.get("train", {}))
        data["model"] = model_definition(data.get("model", {}))
    else:
        data.pop("model", None)
        data.pop("train", None)
    return {k: v for k, v in data.items() if k in kind.chain_sections()}


def ensemble_hash(ens, dtype: str, model_digest: str | None = None) -> str:
    """The chain hash of ``ens`` (an ``EnsembleConfig``) at precision ``dtype``.

    ``model_digest``: the ``file_digest`` of the trained model a sampler that needs one runs
    with (part of the chain); ``None`` for every other sampler, and for the hash of a model
    sampler's chain definition alone (what the config fixes before any training)."""
    data = chain_definition(to_container(ens))
    data["dtype"] = dtype
    if model_digest is not None:
        data["model_digest"] = model_digest
    return _digest(data)


def stored_chain_hash(meta: dict) -> str:
    """The chain hash of a store's own attributes: its stored config (``to_container`` of the
    ensemble), precision and model digest, hashed as ``ensemble_hash`` hashes them. Equal to
    the store's ``config_hash`` unless one of them was edited."""
    data = chain_definition(dict(meta.get("config") or {}))
    data["dtype"] = meta.get("precision")
    if meta.get("model_digest") is not None:
        data["model_digest"] = meta["model_digest"]
    return _digest(data)


def matches_chain(record: dict, ens, dtype: str) -> bool:
    """Whether ``record`` (store metadata, observable-store attributes or an estimate, with
    ``config_hash`` and ``model_digest`` where a model was used) comes from the chain of
    ``ens`` at ``dtype``: its chain hash is that of ``ens`` with the model it names."""
    return record.get("config_hash") == ensemble_hash(ens, dtype, record.get("model_digest"))


def training_hash(ens) -> str:
    """Hash of what determines a trained model: theory, model and training settings."""
    container = to_container(ens)
    data = {k: container[k] for k in ("theory", "model", "train")}
    data["theory"] = _hashed_theory(data["theory"])
    data["train"] = training_definition(data["model"], data["train"])
    kind = MODELS.get(data["model"].get("kind"))
    trainer = TRAINERS.get(kind.trainer) if kind is not None else None
    if trainer is not None and trainer.covers_sampler:  # the effective action depends on m_eff and the MD
        sampler = container["sampler"]
        skind = SAMPLERS.get(sampler.get("name"))
        data["sampler"] = _without_added_defaults(
            {
                k: v
                for k, v in sampler.items()
                if k == "name" or k == "options" or (skind is not None and k in skind.reads)
            }
        )
    data["model"] = model_definition(data["model"])
    return _digest(data)


def file_digest(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
