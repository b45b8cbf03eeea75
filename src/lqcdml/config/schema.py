"""Structured configuration: the schema Hydra validates every composed config against.

An experiment holds named ensembles; each ensemble is a theory, a sampler, a chain
(length, chains per job, replicas, seed) and the measurements made on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..nn.conv import ACTIVATIONS
from ..observables.fermion import NOISES
from ..samplers.integrators import SCHEMES as INTEGRATORS
from ..theories.phi4 import CONVENTIONS
from ..train.flow import SCHEDULES

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
    "THEORY_NAMES",
    "INTEGRATORS",
    "ACTIVATIONS",
    "SCHEDULES",
    "DTYPES",
    "STARTS",
    "CONVENTIONS",
    "FERMIONS",
    "NOISES",
]

# allowed words that belong to the config itself; the others come from the modules
# that implement them, and sampler, model and observable names from config.registry
THEORY_NAMES = ("phi4", "u1", "su")
DTYPES = ("float64", "float32")
STARTS = ("hot", "cold")
FERMIONS = ("none", "staggered", "wilson")


@dataclass
class TheoryConfig:
    """``name``: phi4 (real scalar), u1 or su (Wilson gauge action, ``n_colors`` for SU(N)).

    ``fermion`` (SU(N); U(1) quenched only): ``none``, ``staggered`` (``n_flavours >= 1``
    continuum flavours, rooting by RHMC where Nf is not a multiple of 4; ``0``: quenched,
    the operator for valence measurements only) or ``wilson`` (``n_flavours = 2``), bare mass
    ``fermion_mass``, antiperiodic in time unless ``antiperiodic = false``.
    """

    name: str = "u1"
    lattice: list[int] = field(default_factory=lambda: [8, 8])
    beta: float = 1.0
    n_colors: int = 3
    m2: float = 1.0
    lam: float = 0.0
    convention: str = "flow"
    fermion: str = "none"
    fermion_mass: float = 0.3
    n_flavours: int = 4
    antiperiodic: bool = True


@dataclass
class SamplerConfig:
    """``name``: a registered sampler (``config.registry.SAMPLERS``): ``hmc``, or ``flow``
    (independence Metropolis with proposals from the trained normalizing flow of
    ``model``; the HMC keys and ``chain.start`` are then unused: each chain starts from a
    flow draw).

    HMC; with fermions ``n_steps`` is the outer (fermion-force) level and the gauge
    force runs ``gauge_steps`` steps inside each outer position update. ``solver_tol``
    is the CG relative residual; ``rational_tol`` the maximal relative error of the
    RHMC rational approximations over the operator's spectral bounds. ``options``: the
    keys of a sampler that declares its own config dataclass (its defaults are filled in
    when the config is composed)."""

    name: str = "hmc"
    integrator: str = "omelyan"
    n_steps: int = 10
    trajectory_length: float = 1.0
    gauge_steps: int = 1
    solver_tol: float = 1e-10
    rational_tol: float = 1e-12
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """Normalizing flow of ``sampler.name = flow``.

    ``kind``: ``affine`` (phi^4: checkerboard affine couplings, normal prior of width
    ``prior_scale``), ``u1_equivariant`` (2D U(1): local gauge-equivariant couplings of
    plaquettes, Kanwar et al.; ``loop_context`` adds the 1 x 2 loop of each active
    plaquette to the conditioner's input) or ``u1_plaquette`` (2D U(1): checkerboard
    couplings in plaquette coordinates with one sink plaquette, then ``n_partners``
    autoregressive sink-partner layers with perceptrons of ``partner_hidden`` widths; 2D
    only). Gauge-covariant networks of self-learning HMC (SU(N)): ``stout``
    (``n_layers`` trainable stout layers weighing the staples of ``loops``: plaquette,
    rectangle, polyakov) and ``cask`` (``n_layers`` attention blocks over ``1 x s``
    rectangles, ``s = 1..extent``, each with query, key, value and final stout layers of
    ``loops``); all weights start at zero (the identity). U(1) circle maps
    mix ``n_mix`` non-compact projections; the prior is uniform. ``n_layers`` couplings,
    each conditioned by periodic convolutions with ``hidden`` channels and a
    ``kernel``-wide stencil.
    """

    kind: str = "affine"
    n_layers: int = 16
    hidden: list[int] = field(default_factory=lambda: [8, 8])
    kernel: int = 3
    activation: str = "leaky_relu"
    n_mix: int = 6
    prior_scale: float = 1.0
    loop_context: bool = True
    n_partners: int = 0
    partner_hidden: list[int] = field(default_factory=lambda: [32, 32])
    loops: list[str] = field(default_factory=lambda: ["plaquette", "polyakov"])
    extent: int = 2


@dataclass
class TrainConfig:
    """Reverse-KL training of the flow: Adam at ``lr`` with a ``schedule`` (constant or
    cosine down to ``lr * min_lr_ratio``), ``steps`` batches of ``batch`` samples in
    ``dtype``; gradients capped at the global norm ``grad_clip`` (0: no cap); a checkpoint
    every ``checkpoint_every`` steps; the final model is judged on ``ess_samples`` fresh
    float64 samples (ESS and independence-Metropolis acceptance).

    Effective actions of self-learning HMC (``model.kind`` stout or cask) read ``method``,
    ``loss``, ``steps``, ``lr``, ``seed``, ``checkpoint_every`` and, offline, ``batch`` and
    ``source``. ``loss``: ``plain`` is the published ``(S_f - S_eff)^2``, ``centred`` the
    same with the best constant offset (``train.slhmc``; an offset changes no force). ``online`` trains during ``steps`` SLHMC trajectories of the ensemble's
    own chains (one Adam step after each); ``offline`` takes ``steps`` Adam steps on
    batches of ``batch`` thermalised configurations of the ensemble ``source`` of the
    same experiment (an HMC ensemble of the same theory), each with fresh pseudofermions;
    online training starts from the last configurations of ``source`` if given. The
    trained effective action is judged by one SLHMC trajectory from each of the last
    ``probe`` configurations of ``source``: their mean Metropolis probability is the
    chain's acceptance at equilibrium.
    """

    method: str = "online"
    source: str = ""
    loss: str = "centred"
    steps: int = 2500
    batch: int = 64
    lr: float = 3e-3
    schedule: str = "cosine"
    min_lr_ratio: float = 0.05
    dtype: str = "float32"
    seed: int = 0
    checkpoint_every: int = 250
    ess_samples: int = 10000
    grad_clip: float = 0.0
    probe: int = 64


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
    """``observables``: registered observables (``config.registry.OBSERVABLES``; empty: the
    theory's defaults)."""

    observables: list[str] = field(default_factory=list)
    wilson_loops: list[list[int]] = field(default_factory=lambda: [[1, 1], [2, 2]])
    gradient_flow: GradientFlowConfig = field(default_factory=GradientFlowConfig)
    batch: int = 16
    n_noise: int = 4
    noise: str = "z2"


@dataclass
class EstimatorConfig:
    """Cheaper measurement without bias (``estimators/``), run by ``lqcdml estimate``.

    ``kind = bias_corrected`` (REFERENCE.md "ML bias-corrected estimators"): the cheap
    ``features`` (variables of the ``measure`` store, ``name`` or ``name:coord``) on every
    configuration; the expensive tr D^-n (n = 1..4, ``sampler.solver_tol``, ``n_noise``
    noises of ``measure``) only on the labelled fraction ``r_lb`` of the configurations,
    ``r_tr`` of those training the ``regressor`` (``linear``, ``ridge``, ``gbt``, ``mlp``); with
    ``folds >= 2`` also the K-fold cross-fitted estimator. ``scan_r_lb`` x ``scan_r_tr``
    non-empty: the expensive observable is measured on every configuration (the reference
    of the scan) and the heat maps of sigma_ML / sigma_full and of the central-value check
    are drawn for ``scan_estimator``.

    ``kind = control_variate`` (REFERENCE.md "Neural control variates"): for each entry of
    ``networks`` (hidden widths of ``g_0``; ``[]`` is the linear ``g``) and each training-set
    size in ``n_train``, ``g`` is trained by Adam (``steps``, ``lr``, ``batch``, ``schedule``)
    on the first ``n_train`` configurations in chain order and judged on the chains after
    them (whole chains, disjoint). ``divergence``: ``exact`` or ``hutchinson`` with ``n_probe``
    vectors. The observable is the theory's: phi^4 the time-slice correlator at L_0 / 2,
    U(1) the plaquette.
    """

    kind: str = "none"
    seed: int = 0
    features: list[str] = field(default_factory=lambda: ["plaquette", "polyakov_loop_re", "trace_inverse_sloppy_re:1"])
    r_lb: float = 0.05
    r_tr: float = 0.5
    regressor: str = "gbt"
    folds: int = 0
    sloppy_iterations: int = 10
    scan_r_lb: list[float] = field(default_factory=list)
    scan_r_tr: list[float] = field(default_factory=list)
    scan_estimator: str = "p2"
    networks: list[list[int]] = field(default_factory=lambda: [[]])
    n_train: list[int] = field(default_factory=lambda: [1000])
    steps: int = 2000
    lr: float = 1e-3
    batch: int = 256
    schedule: str = "constant"
    divergence: str = "exact"
    n_probe: int = 1


@dataclass
class EnsembleConfig:
    theory: TheoryConfig = field(default_factory=TheoryConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
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
