"""The configuration's shape: the sections of an ensemble and of an experiment.

An experiment holds named ensembles; each ensemble is a theory, a sampler, a chain
(length, chains per job, replicas, seed) and the measurements made on it, with a trained
model and an estimator where its kinds need them. The sections a kind selects (theory,
model, train, estimator; ``sampler.options``) are typed by the selected kind's own
dataclass, a subclass of the base section here (``config.sections``); the allowed words
come from the kinds (``kinds``), not from this module, which imports no physics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TheoryConfig",
    "SamplerConfig",
    "ChainConfig",
    "GradientFlowConfig",
    "MeasureConfig",
    "ModelConfig",
    "TrainConfig",
    "EstimatorConfig",
    "EnsembleConfig",
    "PathsConfig",
    "LimitsConfig",
    "RootConfig",
    "RootSchema",
    "DTYPES",
    "STARTS",
]

DTYPES = ("float64", "float32")
STARTS = ("hot", "cold")


@dataclass
class TheoryConfig:
    """The keys every theory has: ``name`` selects the theory kind (``kinds.THEORIES``), whose
    own dataclass adds its couplings; ``lattice`` lists the extents ``[L_0, ..., L_{d-1}]``
    (``L_0`` is time)."""

    name: str = "u1"
    lattice: list[int] = field(default_factory=lambda: [8, 8])


@dataclass
class SamplerConfig:
    """``name``: a registered sampler (``kinds.SAMPLERS``): ``hmc``, ``slhmc``, ``slhmc_thin``
    or ``flow`` (independence Metropolis with proposals from the trained normalizing flow of
    ``model``; the HMC keys and ``chain.start`` are then unused: each chain starts from a
    flow draw). The molecular-dynamics keys below are shared by the HMC-type samplers (each
    sampler kind declares which it reads, ``SamplerKind.reads``).

    HMC; with fermions ``n_steps`` is the outer (fermion-force) level and the gauge
    force runs ``gauge_steps`` steps inside each outer position update. ``solver_tol``
    is the CG relative residual; ``md_solver_tol`` that of the molecular-dynamics forces
    alone (``None``: ``solver_tol``; the heat bath and the Metropolis test keep
    ``solver_tol``, so the chain stays exact); ``rational_tol`` the maximal relative error of the
    RHMC rational approximations over the operator's spectral bounds. ``options``: the
    keys of a sampler that declares its own config dataclass (its defaults are filled in
    when the config is composed)."""

    name: str = "hmc"
    integrator: str = "omelyan"
    n_steps: int = 10
    trajectory_length: float = 1.0
    gauge_steps: int = 1
    solver_tol: float = 1e-10
    md_solver_tol: float | None = None
    rational_tol: float = 1e-12
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """The trained model of a sampler that needs one: ``kind`` selects the model kind
    (``kinds.MODELS``), whose dataclass adds its architecture keys."""

    kind: str = "affine"


@dataclass
class TrainConfig:
    """The keys every training has: ``steps`` optimiser steps, a checkpoint every
    ``checkpoint_every`` steps, everything random from ``seed``. The model kind names its
    trainer kind (``kinds.TRAINERS``), whose dataclass adds its own keys."""

    steps: int = 2500
    seed: int = 0
    checkpoint_every: int = 250


@dataclass
class ChainConfig:
    """``n_configs`` stored configurations, one every ``save_every`` trajectories.

    ``n_chains`` independent chains share one tensor (one job); ``replicas`` separate
    jobs each run ``n_chains`` chains. The first ``n_therm`` configurations are
    dropped by the analysis. ``start_from``: an ensemble of the same experiment and
    lattice whose replica ``r`` ends where replica ``r`` of this one starts (its last
    configuration, the first ``n_chains`` of its chains; a thermalised start for
    samplers compared with it); empty: ``start`` (hot or cold).
    """

    n_configs: int = 100
    save_every: int = 1
    n_therm: int = 10
    n_chains: int = 1
    replicas: int = 1
    seed: int = 1
    start: str = "hot"
    start_from: str = ""


@dataclass
class GradientFlowConfig:
    """Gradient (Wilson) flow measurement up to flow time ``t_max`` in steps ``eps``,
    measured every ``measure_every`` steps (``t_max = 0`` switches it off)."""

    t_max: float = 0.0
    eps: float = 0.02
    measure_every: int = 5


@dataclass
class MeasureConfig:
    """``observables``: registered observables (``kinds.OBSERVABLES``; empty: the theory's
    defaults). ``n_noise`` noise vectors of kind ``noise`` for stochastic traces."""

    observables: list[str] = field(default_factory=list)
    wilson_loops: list[list[int]] = field(default_factory=lambda: [[1, 1], [2, 2]])
    gradient_flow: GradientFlowConfig = field(default_factory=GradientFlowConfig)
    batch: int = 16
    n_noise: int = 4
    noise: str = "z2"


@dataclass
class EstimatorConfig:
    """Cheaper measurement without bias, run by ``lqcdml estimate``: ``kind`` selects the
    estimator kind (``kinds.ESTIMATORS``; ``none``: no estimator), whose dataclass adds its
    own keys; ``seed`` seeds its random splits and training."""

    kind: str = "none"
    seed: int = 0


@dataclass
class EnsembleConfig:
    """One ensemble: theory, sampler, chain and measurements; ``model`` and ``train`` only
    for a sampler that needs a trained model (``None`` otherwise), ``estimator`` optional.
    The kind-selected sections hold the selected kind's own dataclass."""

    theory: TheoryConfig = field(default_factory=TheoryConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    model: ModelConfig | None = None
    train: TrainConfig | None = None
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)


@dataclass
class PathsConfig:
    """Root folder of every output; relative paths are taken from the working directory."""

    results: str = "results"


@dataclass
class LimitsConfig:
    """Largest run a job may start, checked before anything is created: ``memory_gb`` for
    the working field memory (about ``FIELD_COPIES`` copies of the ``n_chains x lattice``
    fields), ``disk_gb`` for the growth of an ensemble store (``n_configs`` configurations,
    uncompressed). 0: the memory of the device (the machine's; on CUDA the GPU's) and the
    free disk space."""

    memory_gb: float = 0.0
    disk_gb: float = 0.0


@dataclass
class RootConfig:
    experiment: str = "none"
    ensembles: dict[str, EnsembleConfig] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "float64"
    threads: int = 2
    paths: PathsConfig = field(default_factory=PathsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)


@dataclass
class RootSchema:
    """What Hydra composes against: the root keys typed, each ensemble a plain mapping that
    ``config.sections`` types by its kinds once composed (the kinds' dataclasses differ per
    ensemble, which one structured schema cannot say)."""

    experiment: str = "none"
    ensembles: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    dtype: str = "float64"
    threads: int = 2
    paths: PathsConfig = field(default_factory=PathsConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
