"""Checks of the ``estimator`` section, and how many configurations the estimators see.

The config layer does not import ``estimators`` (generation must not depend on it); the
split itself is ``cli.labels``. ``REGRESSOR_NAMES`` mirrors ``estimators.REGRESSORS``
(a test keeps them equal).
"""

from __future__ import annotations

import numpy as np

from .errors import fail as _fail
from .schema import EnsembleConfig

__all__ = ["ESTIMATOR_KINDS", "SCAN_ESTIMATORS", "REGRESSOR_NAMES", "validate_estimator", "measured_configs",
           "n_measured"]

ESTIMATOR_KINDS = ("none", "bias_corrected", "control_variate")
SCAN_ESTIMATORS = ("p1", "p2", "power_tuned", "cross_fit")
REGRESSOR_NAMES = ("linear", "ridge", "gbt", "mlp")


def measured_configs(ens: EnsembleConfig) -> int:
    """Configurations per chain that ``measure`` reads (those after ``chain.n_therm``)."""
    return ens.chain.n_configs - min(ens.chain.n_therm, ens.chain.n_configs - 1)


def n_measured(ens: EnsembleConfig) -> int:
    return measured_configs(ens) * ens.chain.n_chains * ens.chain.replicas


def validate_estimator(ens: EnsembleConfig, p: str) -> None:
    es = ens.estimator
    if es.kind not in ESTIMATOR_KINDS:
        _fail(p + "estimator.kind", es.kind, ", ".join(ESTIMATOR_KINDS))
    if es.kind == "bias_corrected":
        _validate_bias_corrected(ens, p)
    elif es.kind == "control_variate":
        _validate_control_variate(ens, p)


def _fraction(key: str, value: float, low_open: bool, high: float, high_open: bool, allowed: str) -> None:
    ok = (value > 0 if low_open else value >= 0) and (value < high if high_open else value <= high)
    if not (np.isfinite(value) and ok):
        _fail(key, value, allowed)


def _validate_bias_corrected(ens: EnsembleConfig, p: str) -> None:
    es, th = ens.estimator, ens.theory
    if th.fermion == "none":
        _fail(p + "estimator.kind", es.kind, "control_variate or none without fermions (the expensive "
              "observable is tr D^-n)")
    _fraction(p + "estimator.r_lb", es.r_lb, True, 1.0, False, "0 < r_lb <= 1")
    _fraction(p + "estimator.r_tr", es.r_tr, True, 1.0, True, "0 < r_tr < 1")
    for i, r in enumerate(es.scan_r_lb):
        _fraction(f"{p}estimator.scan_r_lb[{i}]", r, True, 1.0, False, "0 < r_lb <= 1")
    for i, r in enumerate(es.scan_r_tr):
        _fraction(f"{p}estimator.scan_r_tr[{i}]", r, True, 1.0, True, "0 < r_tr < 1")
    if bool(es.scan_r_lb) != bool(es.scan_r_tr):
        _fail(p + "estimator.scan_r_tr", list(es.scan_r_tr), "both scan lists empty or both non-empty")
    if es.regressor not in REGRESSOR_NAMES:
        _fail(p + "estimator.regressor", es.regressor, ", ".join(REGRESSOR_NAMES))
    if es.folds == 1 or es.folds < 0:
        _fail(p + "estimator.folds", es.folds, "0 (no cross-fitting) or folds >= 2")
    if es.scan_estimator not in SCAN_ESTIMATORS or (es.scan_estimator == "cross_fit" and es.folds < 2):
        _fail(p + "estimator.scan_estimator", es.scan_estimator,
              ", ".join(SCAN_ESTIMATORS) + " (cross_fit needs folds >= 2)")
    if es.sloppy_iterations < 1:
        _fail(p + "estimator.sloppy_iterations", es.sloppy_iterations, "sloppy_iterations >= 1")
    if not es.features:
        _fail(p + "estimator.features", list(es.features), "at least one cheap feature")
    observables = set(ens.measure.observables)
    for i, name in enumerate(es.features):
        base = name.split(":")[0]
        if base.startswith("trace_inverse_sloppy") and "trace_inverse_sloppy" not in observables:
            _fail(f"{p}estimator.features[{i}]", name, "features of measured observables (add 'trace_inverse_sloppy' "
                  "to measure.observables)")
    n_lb = int(round(n_measured(ens) * es.r_lb))  # REFERENCE.md's sizes (estimators.splits)
    if n_lb - int(round(n_lb * es.r_tr)) < 1:
        _fail(p + "estimator.r_lb", es.r_lb, f"a labelled set that leaves bias-correction data (N_LB = {n_lb} of "
              f"{n_measured(ens)} configurations)")


def _validate_control_variate(ens: EnsembleConfig, p: str) -> None:
    es, th = ens.estimator, ens.theory
    if th.name not in ("phi4", "u1"):
        _fail(p + "estimator.kind", es.kind, "bias_corrected or none for theory.name = su (control variates: "
              "phi4, u1)")
    if not es.networks:
        _fail(p + "estimator.networks", list(es.networks), "at least one list of hidden widths ([] is linear)")
    for i, widths in enumerate(es.networks):
        if any(w < 1 for w in widths):
            _fail(f"{p}estimator.networks[{i}]", list(widths), "hidden widths >= 1")
    per_chain = measured_configs(ens)
    most = (ens.chain.n_chains * ens.chain.replicas - 1) * per_chain
    for i, n in enumerate(es.n_train):
        if not 10 <= n <= most:
            _fail(f"{p}estimator.n_train[{i}]", n, f"10 <= n_train <= {most} (whole chains must stay for "
                  "the evaluation)")
    for key in ("steps", "batch", "n_probe"):
        if getattr(es, key) < 1:
            _fail(f"{p}estimator.{key}", getattr(es, key), f"{key} >= 1")
    _fraction(p + "estimator.lr", es.lr, True, 1.0, True, "0 < lr < 1")
    if es.schedule not in ("constant", "cosine"):
        _fail(p + "estimator.schedule", es.schedule, "constant, cosine")
    if es.divergence not in ("exact", "hutchinson"):
        _fail(p + "estimator.divergence", es.divergence, "exact, hutchinson")
