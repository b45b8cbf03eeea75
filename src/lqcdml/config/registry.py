"""Registries of the configurable kinds: samplers, flow models, observables.

Each kind is one entry naming its config (the keys it reads, or its own dataclass), its
validation and its builder; the allowed words of the config come from these entries.
Adding a sampler means one module that defines it and one ``SAMPLERS.register(...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch

from .validate import ConfigError

__all__ = [
    "Registry",
    "SamplerKind",
    "ModelKind",
    "ObservableKind",
    "BuildContext",
    "SAMPLERS",
    "MODELS",
    "OBSERVABLES",
]

#: the training keys of reverse-KL flow training
FLOW_TRAIN_KEYS = ("steps", "batch", "lr", "schedule", "min_lr_ratio", "dtype", "seed", "checkpoint_every",
                   "ess_samples", "grad_clip")

#: (ensemble config, key prefix such as "ensembles.u1.") -> None, raising ConfigError
Validator = Callable[[Any, str], None]


@dataclass(frozen=True)
class BuildContext:
    """What a builder gets: the ensemble config, the field dtype, the device and (for
    samplers that need one) the trained model."""

    ensemble: Any  # EnsembleConfig
    dtype: torch.dtype
    device: torch.device = torch.device("cpu")
    model: torch.nn.Module | None = None


@dataclass(frozen=True)
class SamplerKind:
    """A sampler: ``build(ctx) -> Sampler``.

    ``reads``: the keys of the shared ``sampler`` section it uses (with ``name`` and its
    ``options`` they are the sampler's part of the chain hash). ``options``: a dataclass of
    its own keys, given as ``sampler.options`` (defaults filled in when composed).
    ``needs_model``: its chain depends on a trained model, so the ``model`` and ``train``
    sections belong to its chain definition and generation needs ``--model``.
    ``observable``: ``theory config -> (name, fields -> [B])``, the cheap observable its
    store records per configuration (``None``: the theory's, ``config.build.cheap_observable``).
    """

    name: str
    build: Callable[[BuildContext], Any]
    reads: tuple[str, ...] = ()
    options: type | None = None
    validate: Validator | None = None
    needs_model: bool = False
    theories: tuple[str, ...] = ("phi4", "u1", "su")
    observable: Callable[[Any], tuple[str, Callable[[torch.Tensor], torch.Tensor]]] | None = None
    doc: str = ""
    #: ``StepInfo.counters`` its stores record per configuration (cost: CG iterations, ...)
    counters: tuple[str, ...] = ()

    def chain_sections(self) -> tuple[str, ...]:
        """The config sections that define this sampler's chain."""
        return ("theory", "sampler", "chain") + (("model", "train") if self.needs_model else ())


@dataclass(frozen=True)
class ModelKind:
    """A trained model (for ``needs_model`` samplers): ``build(ensemble) -> Module``
    (untrained, float64). ``reads``: the keys of the ``model`` section it uses (the others
    stay out of every hash)."""

    name: str
    theory: str
    build: Callable[[Any], torch.nn.Module]
    reads: tuple[str, ...]
    validate: Validator | None = None
    doc: str = ""
    #: ``flow`` (reverse-KL trained normalizing flows) or ``smearing`` (SLHMC effective actions)
    family: str = "flow"
    #: the keys of the ``train`` section its training reads (the others stay out of every hash)
    train_reads: tuple[str, ...] = FLOW_TRAIN_KEYS


#: (fields [B, ...], per-chain generators) -> {variable: (values [B, ...], dims, coords)}
Measurement = Callable[[torch.Tensor, list], dict]


@dataclass(frozen=True)
class ObservableKind:
    """A measurement: ``build(ensemble) -> Measurement``. ``default_for``: theories that
    measure it when ``measure.observables`` is empty."""

    name: str
    theories: tuple[str, ...]
    build: Callable[[Any], Measurement]
    default_for: tuple[str, ...] = ()
    needs_fermions: bool = False
    validate: Validator | None = None
    doc: str = ""


K = TypeVar("K", SamplerKind, ModelKind, ObservableKind)


@dataclass
class Registry(Generic[K]):
    """Named entries of one kind; lookup of an unknown name is a one-line ``ConfigError``."""

    kind: str
    key: str  # the config key that selects an entry, for messages
    _entries: dict[str, K] = field(default_factory=dict)

    def register(self, entry: K, replace: bool = False) -> K:
        if entry.name in self._entries and not replace:
            raise ValueError(f"{self.kind} {entry.name!r} is registered already")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries.values())

    def get(self, name: str) -> K | None:
        return self._entries.get(name)

    def lookup(self, name: str, key: str | None = None) -> K:
        """The entry ``name``, or a ConfigError naming the key and the allowed names."""
        if name not in self._entries:
            raise ConfigError(f"{key or self.key} = {name!r}; allowed: {', '.join(self._entries)}")
        return self._entries[name]


SAMPLERS: Registry[SamplerKind] = Registry("sampler", "sampler.name")
MODELS: Registry[ModelKind] = Registry("model", "model.kind")
OBSERVABLES: Registry[ObservableKind] = Registry("observable", "measure.observables")
