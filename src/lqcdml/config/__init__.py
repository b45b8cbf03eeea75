"""Structured configs, validation and Hydra composition."""

from .compose import (
    compose,
    compose_experiment,
    config_dir,
    dump,
    ensemble_hash,
    expand_overrides,
    load,
    select_ensemble,
    to_container,
)
from .schema import (
    ChainConfig,
    EnsembleConfig,
    FlowConfig,
    MeasureConfig,
    PathsConfig,
    RootConfig,
    SamplerConfig,
    TheoryConfig,
)
from .validate import DEFAULT_OBSERVABLES, OBSERVABLES, ConfigError, validate_root

__all__ = [
    "DEFAULT_OBSERVABLES",
    "OBSERVABLES",
    "ChainConfig",
    "ConfigError",
    "EnsembleConfig",
    "FlowConfig",
    "MeasureConfig",
    "PathsConfig",
    "RootConfig",
    "SamplerConfig",
    "TheoryConfig",
    "compose",
    "compose_experiment",
    "config_dir",
    "dump",
    "ensemble_hash",
    "expand_overrides",
    "load",
    "select_ensemble",
    "to_container",
    "validate_root",
]
