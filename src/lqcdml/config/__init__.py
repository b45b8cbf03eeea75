"""The config language: the sections of an experiment, Hydra composition, typing each section
by the kind it selects (found through ``config.catalogue``), validation, YAML in and out.

This package imports no physics: the kinds are ``lqcdml.kinds``, the objects a config builds
``lqcdml.assembly``, its hashes and provenance ``lqcdml.identity``.
"""

from .compose import (
    compose,
    compose_experiment,
    config_dir,
    dump,
    expand_overrides,
    load,
    merge_overrides,
    select_ensemble,
    to_container,
)
from .errors import ConfigError
from .schema import (
    ChainConfig,
    EnsembleConfig,
    EstimatorConfig,
    GradientFlowConfig,
    MeasureConfig,
    ModelConfig,
    PathsConfig,
    RootConfig,
    SamplerConfig,
    TheoryConfig,
    TrainConfig,
)
from .seeds import replica_seed
from .validate import validate_root

__all__ = [
    "ChainConfig",
    "ConfigError",
    "EnsembleConfig",
    "EstimatorConfig",
    "GradientFlowConfig",
    "MeasureConfig",
    "ModelConfig",
    "PathsConfig",
    "RootConfig",
    "SamplerConfig",
    "TheoryConfig",
    "TrainConfig",
    "compose",
    "compose_experiment",
    "config_dir",
    "dump",
    "expand_overrides",
    "load",
    "merge_overrides",
    "replica_seed",
    "select_ensemble",
    "to_container",
    "validate_root",
]
