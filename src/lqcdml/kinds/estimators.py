"""Estimator kinds: bias-corrected ML estimators and neural control variates.

An estimator kind owns the ``estimator`` section (its dataclass adds its keys to the shared
``kind`` and ``seed``) and says what it does end to end: the stores its estimate reads
(``reads``: the workflow asks it which rules feed ``lqcdml estimate``), the estimate itself
(``estimate``), the summary's lines and figures of its result (``report``, ``figures``).
``none`` is the kind of an ensemble without an estimator. The built-in kinds name their
functions as ``"module:function"`` (in ``estimators/`` and ``analysis/estimates.py``),
imported when called: the catalogue imports neither, and the rerun trigger of a command
that only looks kinds up (``generate``) does not follow them; the workflow adds the modules
the kinds name (``EstimatorKind.modules``) to the triggers of ``estimate`` and ``analyze``. ``REGRESSOR_NAMES``
mirrors ``estimators.REGRESSORS`` (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config.errors import fail
from ..config.schema import EstimatorConfig
from ..config.seeds import SKLEARN_SEED_MAX
from .registry import FunctionRef, Kind, Registry, resolve
from .theories import theory_kind

__all__ = [
    "EstimatorKind",
    "ESTIMATORS",
    "Estimate",
    "EstimateLines",
    "EstimateFigures",
    "BiasCorrectedEstimator",
    "ControlVariateEstimator",
    "STORE_READS",
    "SCAN_ESTIMATORS",
    "REGRESSOR_NAMES",
    "measured_configs",
    "n_measured",
]

#: the stores an estimate may read: the cheap observables, the expensive ones (``measure
#: --expensive``), the ensembles' configurations
STORE_READS = ("observables", "expensive", "ensembles")
SCAN_ESTIMATORS = ("p1", "p2", "power_tuned", "cross_fit")
REGRESSOR_NAMES = ("linear", "ridge", "gbt", "mlp")
#: the bias-corrected estimate seeds target k of tr1..tr4, tr1_pow2..4 with seed + 100 k and
#: cross-fitting fold f of it with that + 1 + f
BIAS_CORRECTED_TARGETS = 7


#: (ensemble config, sources, log) -> the JSON-ready result; ``sources`` follows
#: ``estimators.pipeline_inputs.EstimatorSources``, ``log`` takes one progress line at a time
Estimate = Callable[[Any, Any, Callable[[str], None]], dict]
#: (result, the ensemble's resolved theory section or None) -> markdown lines of the summary
EstimateLines = Callable[[dict, "dict | None"], list[str]]
#: (result, figure folder) -> the figures written
EstimateFigures = Callable[[dict, Path], list[Path]]


def _no_figures(result: dict, out_dir: Path) -> list[Path]:
    return []


def _result_lines(result: dict, theory: dict | None) -> list[str]:
    """The summary lines of a kind that declares none: each ``estimates`` entry that has a
    ``value`` and an ``error``."""
    rows = [
        f"| {name} | {v['value']:.6g} +- {v['error']:.2g} |"
        for name, v in sorted(result.get("estimates", {}).items())
        if isinstance(v, dict) and {"value", "error"} <= v.keys()
    ]
    head = [f"### `{result.get('ensemble')}`: {result.get('kind')}", ""]
    return head + (["| estimate | value |", "|---|---|", *rows, ""] if rows else ["(no estimates)", ""])


@dataclass(frozen=True, kw_only=True)
class EstimatorKind(Kind):
    """An estimator: ``reads`` the stores its estimate takes (a subset of ``STORE_READS``;
    empty: no estimate is made); ``estimate_fn`` makes it (an ``Estimate``; ``None`` exactly
    when ``reads`` is empty), ``report_fn`` (``EstimateLines``) and ``figures_fn``
    (``EstimateFigures``) show its result in the summary, each a function or its
    ``"module:function"``; ``max_seed(es)`` the largest ``estimator.seed`` whose derived seeds
    fit their generators. An estimator that reads ``expensive`` stores names the observable
    ``measure --expensive`` records (``expensive_fn``: ``ens -> Measurement``) and the entries
    it is measured on (``expensive_entries_fn``: ``ens -> set of flat positions``, replica-major
    over the measured entries, or None for every entry)."""

    reads: tuple[str, ...] = ()
    estimate_fn: FunctionRef | None = None
    expensive_fn: FunctionRef | None = None
    expensive_entries_fn: FunctionRef | None = None
    report_fn: FunctionRef = _result_lines
    figures_fn: FunctionRef = _no_figures
    max_seed: Callable[[Any], int] = field(default=lambda es: SKLEARN_SEED_MAX)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.reads) - set(STORE_READS))
        if unknown:
            raise ValueError(f"estimator {self.name!r}: reads {unknown}; allowed: {', '.join(STORE_READS)}")
        if bool(self.reads) != (self.estimate_fn is not None):
            raise ValueError(f"estimator {self.name!r}: an estimate needs the stores it reads, and reads one")
        if ("expensive" in self.reads) != (self.expensive_fn is not None and self.expensive_entries_fn is not None):
            raise ValueError(f"estimator {self.name!r}: reading expensive stores needs expensive_fn and its entries")

    @property
    def runs(self) -> bool:
        """Whether an ensemble with this estimator gets an estimate."""
        return self.estimate_fn is not None

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules its functions named as ``"module:function"`` live in."""
        refs = (self.estimate_fn, self.report_fn, self.figures_fn, self.expensive_fn, self.expensive_entries_fn)
        return tuple(sorted({r.partition(":")[0] for r in refs if isinstance(r, str)}))

    def estimate(self, ens: Any, sources: Any, log: Callable[[str], None]) -> dict:
        """The estimate of ensemble config ``ens`` from ``sources`` (progress lines to ``log``)."""
        if self.estimate_fn is None:
            raise ValueError(f"estimator {self.name!r} makes no estimate")
        return resolve(self.estimate_fn)(ens, sources, log)

    def expensive_measurement(self, ens: Any) -> Any:
        """The ``Measurement`` of ``measure --expensive`` (``kinds.observables.Measurement``)."""
        if self.expensive_fn is None:
            raise ValueError(f"estimator {self.name!r} reads no expensive observable")
        return resolve(self.expensive_fn)(ens)

    def expensive_entries(self, ens: Any) -> set[int] | None:
        """The flat positions measured by ``measure --expensive`` (None: every entry)."""
        if self.expensive_entries_fn is None:
            raise ValueError(f"estimator {self.name!r} reads no expensive observable")
        return resolve(self.expensive_entries_fn)(ens)

    def report(self, result: dict, theory: dict | None) -> list[str]:
        """The summary's markdown lines of ``result`` (``theory``: the ensemble's, or None)."""
        return resolve(self.report_fn)(result, theory)

    def figures(self, result: dict, out_dir: Path) -> list[Path]:
        """Write the figures of ``result`` into ``out_dir``; their paths."""
        return resolve(self.figures_fn)(result, out_dir)


ESTIMATORS: Registry[EstimatorKind] = Registry("estimator", "estimator.kind")


def measured_configs(ens) -> int:
    """Configurations per chain that ``measure`` reads (those after ``chain.n_therm``)."""
    return ens.chain.n_configs - min(ens.chain.n_therm, ens.chain.n_configs - 1)


def n_measured(ens) -> int:
    return measured_configs(ens) * ens.chain.n_chains * ens.chain.replicas


def _fraction(key: str, value: float, low_open: bool, high: float, high_open: bool, allowed: str) -> None:
    ok = (value > 0 if low_open else value >= 0) and (value < high if high_open else value <= high)
    if not (np.isfinite(value) and ok):
        fail(key, value, allowed)


# --- bias-corrected --------------------------------------------------------------------------


@dataclass
class BiasCorrectedEstimator(EstimatorConfig):
    """Bias-corrected ML estimators (docs/reference.md, "ML bias-corrected estimators"): the
    cheap ``features`` (variables of the ``measure`` store, ``name`` or ``name:coord``) on every
    configuration; the expensive tr D^-n (n = 1..4, ``sampler.solver_tol``, ``n_noise`` noises of
    ``measure``) only on the labelled fraction ``r_lb`` of the configurations, ``r_tr`` of those
    training the ``regressor`` (``linear``, ``ridge``, ``gbt``, ``mlp``); with ``folds >= 2`` also
    the K-fold cross-fitted estimator. ``scan_r_lb`` x ``scan_r_tr`` non-empty: the expensive
    observable is measured on every configuration (the reference of the scan) and the heat maps
    of sigma_ML / sigma_full and of the central-value check are drawn for ``scan_estimator``.
    ``sloppy_iterations``: CG iterations of the truncated-solve feature."""

    kind: str = "bias_corrected"
    features: list[str] = field(default_factory=lambda: ["plaquette", "polyakov_loop_re", "trace_inverse_sloppy_re:1"])
    r_lb: float = 0.05
    r_tr: float = 0.5
    regressor: str = "gbt"
    folds: int = 0
    sloppy_iterations: int = 10
    scan_r_lb: list[float] = field(default_factory=list)
    scan_r_tr: list[float] = field(default_factory=list)
    scan_estimator: str = "p2"


def _validate_bias_corrected(ens, p: str) -> None:
    es, th = ens.estimator, ens.theory
    if not theory_kind(th).has_fermions(th):
        fail(
            p + "estimator.kind",
            es.kind,
            "control_variate or none without fermions (the expensive observable is tr D^-n)",
        )
    _fraction(p + "estimator.r_lb", es.r_lb, True, 1.0, False, "0 < r_lb <= 1")
    _fraction(p + "estimator.r_tr", es.r_tr, True, 1.0, True, "0 < r_tr < 1")
    for i, r in enumerate(es.scan_r_lb):
        _fraction(f"{p}estimator.scan_r_lb[{i}]", r, True, 1.0, False, "0 < r_lb <= 1")
    for i, r in enumerate(es.scan_r_tr):
        _fraction(f"{p}estimator.scan_r_tr[{i}]", r, True, 1.0, True, "0 < r_tr < 1")
    if bool(es.scan_r_lb) != bool(es.scan_r_tr):
        fail(p + "estimator.scan_r_tr", list(es.scan_r_tr), "both scan lists empty or both non-empty")
    if es.regressor not in REGRESSOR_NAMES:
        fail(p + "estimator.regressor", es.regressor, ", ".join(REGRESSOR_NAMES))
    if es.folds == 1 or es.folds < 0:
        fail(p + "estimator.folds", es.folds, "0 (no cross-fitting) or folds >= 2")
    if es.scan_estimator not in SCAN_ESTIMATORS or (es.scan_estimator == "cross_fit" and es.folds < 2):
        fail(
            p + "estimator.scan_estimator",
            es.scan_estimator,
            ", ".join(SCAN_ESTIMATORS) + " (cross_fit needs folds >= 2)",
        )
    if es.sloppy_iterations < 1:
        fail(p + "estimator.sloppy_iterations", es.sloppy_iterations, "sloppy_iterations >= 1")
    if not es.features:
        fail(p + "estimator.features", list(es.features), "at least one cheap feature")
    observables = set(ens.measure.observables)
    for i, name in enumerate(es.features):
        base = name.split(":")[0]
        if base.startswith("trace_inverse_sloppy") and "trace_inverse_sloppy" not in observables:
            fail(
                f"{p}estimator.features[{i}]",
                name,
                "features of measured observables (add 'trace_inverse_sloppy' to measure.observables)",
            )
    n_lb = int(round(n_measured(ens) * es.r_lb))  # docs/reference.md's sizes (estimators.splits)
    if n_lb - int(round(n_lb * es.r_tr)) < 1:
        fail(
            p + "estimator.r_lb",
            es.r_lb,
            f"a labelled set that leaves bias-correction data (N_LB = {n_lb} of {n_measured(ens)} configurations)",
        )


# --- control variates ------------------------------------------------------------------------


@dataclass
class ControlVariateEstimator(EstimatorConfig):
    """Neural control variates (docs/reference.md, "Neural control variates"): for each entry of
    ``networks`` (hidden widths of ``g_0``; ``[]`` is the linear ``g``) and each training-set size
    in ``n_train``, ``g`` is trained by Adam (``steps``, ``lr``, ``batch``, ``schedule``) on the
    first ``n_train`` configurations in chain order and judged on the chains after them (whole
    chains, disjoint). ``divergence``: ``exact`` or ``hutchinson`` with ``n_probe`` vectors. The
    observable is the theory's: phi^4 the time-slice correlator at L_0 / 2, U(1) the plaquette."""

    kind: str = "control_variate"
    networks: list[list[int]] = field(default_factory=lambda: [[]])
    n_train: list[int] = field(default_factory=lambda: [1000])
    steps: int = 2000
    lr: float = 1e-3
    batch: int = 256
    schedule: str = "constant"
    divergence: str = "exact"
    n_probe: int = 1


def _validate_control_variate(ens, p: str) -> None:
    from .theories import THEORIES

    es, th = ens.estimator, ens.theory
    if theory_kind(th).control_variate is None:
        fail(
            p + "estimator.kind",
            es.kind,
            f"bias_corrected or none for theory.name = {th.name} (control variates: "
            + ", ".join(k.name for k in THEORIES if k.control_variate is not None)
            + ")",
        )
    if not es.networks:
        fail(p + "estimator.networks", list(es.networks), "at least one list of hidden widths ([] is linear)")
    for i, widths in enumerate(es.networks):
        if any(w < 1 for w in widths):
            fail(f"{p}estimator.networks[{i}]", list(widths), "hidden widths >= 1")
    per_chain = measured_configs(ens)
    most = (ens.chain.n_chains * ens.chain.replicas - 1) * per_chain
    for i, n in enumerate(es.n_train):
        if not 10 <= n <= most:
            fail(
                f"{p}estimator.n_train[{i}]", n, f"10 <= n_train <= {most} (whole chains must stay for the evaluation)"
            )
    for key in ("steps", "batch", "n_probe"):
        if getattr(es, key) < 1:
            fail(f"{p}estimator.{key}", getattr(es, key), f"{key} >= 1")
    _fraction(p + "estimator.lr", es.lr, True, 1.0, True, "0 < lr < 1")
    if es.schedule not in ("constant", "cosine"):
        fail(p + "estimator.schedule", es.schedule, "constant, cosine")
    if es.divergence not in ("exact", "hutchinson"):
        fail(p + "estimator.divergence", es.divergence, "exact, hutchinson")


# --- the built-in kinds ----------------------------------------------------------------------


def _bias_corrected_entries(ens) -> set[int] | None:
    """The labelled entries of the split (every entry when the estimator scans (r_lb, r_tr))."""
    if ens.estimator.scan_r_lb:
        return None
    split = resolve("lqcdml.estimators.pipeline_split:label_split")(ens.estimator, n_measured(ens))
    return set(split.labelled.tolist())


def _bias_corrected_report(result: dict, theory: dict | None) -> list[str]:
    return resolve("lqcdml.analysis.estimates:bias_corrected_lines")(result)


ESTIMATORS.register(
    EstimatorKind(
        name="none",
        config=EstimatorConfig,
        doc="no estimator",
        max_seed=lambda es: SKLEARN_SEED_MAX - 100 * (BIAS_CORRECTED_TARGETS - 1),
    )
)
ESTIMATORS.register(
    EstimatorKind(
        name="bias_corrected",
        config=BiasCorrectedEstimator,
        validate=_validate_bias_corrected,
        reads=("observables", "expensive"),
        estimate_fn="lqcdml.estimators.pipeline_bias:run_bias_corrected",
        expensive_fn="lqcdml.kinds.observables:expensive_measurement",
        expensive_entries_fn=_bias_corrected_entries,
        report_fn=_bias_corrected_report,
        figures_fn="lqcdml.analysis.estimates:plot_bias_corrected_scan",
        max_seed=lambda es: SKLEARN_SEED_MAX - 100 * (BIAS_CORRECTED_TARGETS - 1) - es.folds,
        doc="bias-corrected ML estimators of tr D^-n: cheap features on all configurations, the expensive "
        "observable on a labelled subset",
    )
)
ESTIMATORS.register(
    EstimatorKind(
        name="control_variate",
        config=ControlVariateEstimator,
        validate=_validate_control_variate,
        reads=("ensembles",),
        estimate_fn="lqcdml.estimators.pipeline_cv:run_control_variate",
        report_fn="lqcdml.analysis.estimates:control_variate_lines",
        figures_fn="lqcdml.analysis.estimates:plot_control_variate_training",
        max_seed=lambda es: SKLEARN_SEED_MAX - 100 * (BIAS_CORRECTED_TARGETS - 1),
        doc="neural control variates from the Schwinger-Dyson identity",
    )
)
