"""An ensemble's sections typed by its kinds.

The theory section is typed by its theory kind's dataclass (``theory.name``), ``sampler.options``
by the sampler kind's, ``model`` by the model kind's (``model.kind``) and ``train`` by the
dataclass of the model kind's trainer, ``estimator`` by the estimator kind's
(``estimator.kind``); ``chain`` and ``measure`` are the same for every ensemble. ``model`` and
``train`` exist only for a sampler that needs a trained model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from ..config.errors import ConfigError
from ..config.schema import (
    ChainConfig,
    EnsembleConfig,
    EstimatorConfig,
    MeasureConfig,
    ModelConfig,
    SamplerConfig,
    TheoryConfig,
)
from ..config.sections import typed_section
from .estimators import ESTIMATORS
from .models import MODELS, check_model_fits
from .registry import Kind, Registry
from .samplers import SAMPLERS
from .theories import THEORIES
from .trainers import TRAINERS

__all__ = ["SECTIONS", "type_ensemble", "OPTION_KEYS_ADDED"]

SECTIONS = tuple(f.name for f in dataclasses.fields(EnsembleConfig))
#: sampler options added after stores were written (sampler name -> {key: default}): left
#: out of a resolved config at their default, so that the hashes of existing stores stay valid
OPTION_KEYS_ADDED = {"hmc": {"trajectory_jitter": 0.0}}


def _selector(data: Any, base: type, key: str, where: str) -> str:
    """The kind a section selects: its ``key`` (``name``, ``kind``), else the base default."""
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        return getattr(base, key)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key} = {value!r}; allowed: a name")
    return value


def _kind_section(registry: Registry, base: type, selector: str, data: Any, where: str, lenient: bool):
    name = _selector(data, base, selector, where)
    kind: Kind = registry.lookup(name, f"{where}.{selector}")
    config = cast(type, kind.config)  # theory, estimator and model kinds own their section: never None
    return typed_section(config, data, where, f"{registry.key} = {name!r}", lenient)


def _sampler(data: Any, where: str, lenient: bool) -> SamplerConfig:
    sampler = typed_section(SamplerConfig, data, where, lenient=lenient)
    kind = SAMPLERS.lookup(sampler.name, where + ".name")
    key = where + ".options"
    if kind.options is None:
        if sampler.options and not lenient:
            raise ConfigError(f"{key} = {dict(sampler.options)!r}; allowed: no options for sampler {kind.name!r}")
        sampler.options = {}
        return sampler
    typed: Any = typed_section(kind.options, dict(sampler.options), key, f"sampler.name = {kind.name!r}", lenient)
    # options added after stores were written stay out at their default (identity.hashes),
    # so a resolved config can switch to another sampler without a stray key
    added = OPTION_KEYS_ADDED.get(kind.name, {})
    sampler.options = {k: v for k, v in dataclasses.asdict(typed).items() if not (k in added and v == added[k])}
    return sampler


def type_ensemble(data: Any, prefix: str, lenient: bool = False) -> EnsembleConfig:
    """The ensemble of the plain mapping ``data`` (key prefix ``ensembles.NAME``), every section
    typed by its kind. ``lenient``: drop the keys and sections this version does not read (a
    config stored by another version) instead of refusing them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix} = {data!r}; allowed: a mapping of the sections {', '.join(SECTIONS)}")
    unknown = [k for k in data if k not in SECTIONS]
    if unknown and not lenient:
        raise ConfigError(f"{prefix}.{unknown[0]}: unknown key {unknown[0]!r}; allowed: {', '.join(SECTIONS)}")
    theory = _kind_section(THEORIES, TheoryConfig, "name", data.get("theory"), prefix + ".theory", lenient)
    sampler = _sampler(data.get("sampler"), prefix + ".sampler", lenient)
    ens = EnsembleConfig(
        theory=theory,
        sampler=sampler,
        chain=typed_section(ChainConfig, data.get("chain"), prefix + ".chain", lenient=lenient),
        measure=typed_section(MeasureConfig, data.get("measure"), prefix + ".measure", lenient=lenient),
        estimator=_kind_section(
            ESTIMATORS, EstimatorConfig, "kind", data.get("estimator"), prefix + ".estimator", lenient
        ),
    )
    kind = SAMPLERS.lookup(sampler.name)
    if kind.needs_model:
        ens.model = _kind_section(MODELS, ModelConfig, "kind", data.get("model"), prefix + ".model", lenient)
        if not lenient:  # before the training section, which the model kind's trainer types
            check_model_fits(ens.model.kind, theory.name, kind.model_family, sampler.name, prefix + ".")
        trainer = TRAINERS.lookup(MODELS.lookup(ens.model.kind).trainer)
        ens.train = typed_section(
            cast(type, trainer.config),  # a trainer kind owns the train section: never None
            data.get("train"),
            prefix + ".train",
            f"the trainer {trainer.name!r} of model.kind = {ens.model.kind!r}",
            lenient,
        )
    elif not lenient:
        for section in ("model", "train"):
            if data.get(section) is not None:
                users = ", ".join(k.name for k in SAMPLERS if k.needs_model)
                raise ConfigError(
                    f"{prefix}.{section}: a section for sampler.name = {sampler.name!r}, which uses no "
                    f"trained model; allowed: leave it out, or a sampler with a model ({users})"
                )
    return ens
