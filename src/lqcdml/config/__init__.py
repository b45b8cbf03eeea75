"""Structured configs, registries of samplers, models and observables, validation,
hashes and Hydra composition."""

from . import models, observables, samplers  # noqa: F401  (register the built-in kinds)
from .compose import (
    compose,
    compose_experiment,
    config_dir,
    dump,
    expand_overrides,
    load,
    sampler_options,
    select_ensemble,
    to_container,
)
from .errors import ConfigError
from .hashes import chain_definition, ensemble_hash, file_digest, matches_chain, training_hash
from .registry import MODELS, OBSERVABLES, SAMPLERS, BuildContext, ModelKind, ObservableKind, SamplerKind
from .schema import (
    ChainConfig,
    EnsembleConfig,
    GradientFlowConfig,
    MeasureConfig,
    PathsConfig,
    RootConfig,
    SamplerConfig,
    TheoryConfig,
)
from .validate import validate_root

__all__ = [
    "MODELS",
    "OBSERVABLES",
    "SAMPLERS",
    "BuildContext",
    "ChainConfig",
    "ConfigError",
    "EnsembleConfig",
    "GradientFlowConfig",
    "MeasureConfig",
    "ModelKind",
    "ObservableKind",
    "PathsConfig",
    "RootConfig",
    "SamplerConfig",
    "SamplerKind",
    "TheoryConfig",
    "chain_definition",
    "compose",
    "compose_experiment",
    "config_dir",
    "dump",
    "ensemble_hash",
    "matches_chain",
    "expand_overrides",
    "file_digest",
    "load",
    "sampler_options",
    "select_ensemble",
    "to_container",
    "training_hash",
    "validate_root",
]
