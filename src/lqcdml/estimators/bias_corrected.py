"""Bias-corrected ML estimators of an expensive observable
(docs/reference.md#ml-bias-corrected-estimators).

Notation: ``y`` the expensive observable (finite on the labelled positions, anything
elsewhere), ``f`` the regressor's prediction from cheap features on every configuration,
subsets from ``splits``. Each estimator is a ``pyerrors.Obs`` built from means over
subsets of one ensemble (``EnsembleIndex.mean``), so its Gamma-method error keeps the
autocorrelation of each subset and the correlation between the terms. The regressor is
held fixed (it was trained on data the correction does not use).

- ``p1 = mean_UL f + (mean_BC y - mean_BC f)``
- ``p2 = (N_LB / N) mean_LB y + (N_UL / N) p1``
- power-tuned: ``mean_BC (y - lam f) + lam mean_UL f``, ``lam* = Cov(y, f) / ((1 + N_BC/N_UL) Var f)``
  from the training set (a fixed weight: unbiased for any ``lam``; ``lam = 1`` is p1)
- cross-fitting: ``K`` strided folds of the labelled set, regressor ``f_k`` trained without
  fold ``k``; ``mean_UL fbar + mean_LB (y - f_{k(i)})`` with ``fbar`` the mean of the ``f_k``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .ensemble import EnsembleIndex, pe
from .regressors import Regressor
from .splits import LabelSplit, cross_fit_folds

__all__ = [
    "full_estimate",
    "labelled_estimate",
    "p1",
    "p2",
    "power_tuned",
    "PowerTuned",
    "cross_fit",
    "CrossFit",
    "central_value_check",
    "central_value_check_values",
    "train_on_split",
]


def full_estimate(ens: EnsembleIndex, y: np.ndarray) -> pe.Obs:
    """Plain mean of ``y`` measured on every configuration (the reference)."""
    return ens.mean(y)


def labelled_estimate(ens: EnsembleIndex, y: np.ndarray, split: LabelSplit) -> pe.Obs:
    """Plain mean over the labelled configurations only (same expensive cost, no ML)."""
    return ens.mean(_at(y, split.labelled), split.labelled)


def _at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``values`` with NaN outside ``positions`` (guards against reading unmeasured entries)."""
    out = np.full(len(values), np.nan)
    out[positions] = np.asarray(values, dtype=float)[positions]
    if not np.all(np.isfinite(out[positions])):
        raise ValueError("bias-corrected estimator: the expensive observable is missing on a labelled configuration")
    return out


def p1(ens: EnsembleIndex, y: np.ndarray, f: np.ndarray, split: LabelSplit) -> pe.Obs:
    """``mean_UL f + mean_BC (y - f)``."""
    bc, ul = split.bias_correction, split.unlabelled
    return ens.mean(f, ul) + ens.mean(_at(y, bc) - np.asarray(f, dtype=float), bc)


def p2(ens: EnsembleIndex, y: np.ndarray, f: np.ndarray, split: LabelSplit) -> pe.Obs:
    """``(N_LB / N) mean_LB y + (N_UL / N) p1``."""
    n_lb, n_ul = len(split.labelled), len(split.unlabelled)
    return (n_lb / split.n) * labelled_estimate(ens, y, split) + (n_ul / split.n) * p1(ens, y, f, split)


@dataclass(frozen=True)
class PowerTuned:
    estimate: pe.Obs
    lam: float


def power_tuned(ens: EnsembleIndex, y: np.ndarray, f: np.ndarray, split: LabelSplit) -> PowerTuned:
    """The power-tuned estimator, ``lam*`` measured on the training set.

    ``lam`` is a fixed weight for the estimate: taken from data the estimate does not
    use, the estimator stays exactly unbiased for any ``lam`` (a plug-in ``lam`` from the
    bias-correction set itself carries an ``O(1 / N_BC)`` bias: 0.1 sigma at ``N_BC = 40``).
    """
    bc, ul, tr = split.bias_correction, split.unlabelled, split.train
    fb = np.asarray(f, dtype=float)
    yt = _at(y, tr)[tr]
    cov = np.cov(yt, fb[tr], ddof=1)
    lam = float(cov[0, 1] / ((1.0 + len(bc) / len(ul)) * cov[1, 1])) if cov[1, 1] > 0 else 0.0
    return PowerTuned(ens.mean(_at(y, bc) - lam * fb, bc) + lam * ens.mean(fb, ul), lam)


@dataclass(frozen=True)
class CrossFit:
    estimate: pe.Obs
    fold_train: list[np.ndarray]
    fold_correct: list[np.ndarray]
    predictions: np.ndarray  # [K, n]: f_k on every configuration


def cross_fit(
    ens: EnsembleIndex,
    x: np.ndarray,
    y: np.ndarray,
    split: LabelSplit,
    make: Callable[[int], Regressor],
    folds: int,
) -> CrossFit:
    """K-fold cross-fitted estimator; ``make(k)`` returns a fresh regressor for fold ``k``.

    Uses every labelled configuration for the correction (``split.train`` is ignored: the
    folds take its place).
    """
    x = np.asarray(x, dtype=float)
    y = _at(y, split.labelled)
    plan = cross_fit_folds(split.labelled, folds)
    preds = np.stack([make(k).fit(x[tr], y[tr]).predict(x) for k, (tr, _) in enumerate(plan)])
    residual = np.full(len(y), np.nan)
    for k, (_, corr) in enumerate(plan):
        residual[corr] = y[corr] - preds[k, corr]
    ul = split.unlabelled
    est = ens.mean(preds.mean(axis=0), ul) + ens.mean(residual, split.labelled)
    return CrossFit(est, [tr for tr, _ in plan], [c for _, c in plan], preds)


def central_value_check(a: pe.Obs, b: pe.Obs) -> int:
    """2 if each value lies inside the other's 1-sigma bar, 1 if one does, 0 if neither.

    Both must have had ``gamma_method`` called.
    """
    return central_value_check_values(float(a.value), float(a.dvalue), float(b.value), float(b.dvalue))


def central_value_check_values(a: float, a_error: float, b: float, b_error: float) -> int:
    """``central_value_check`` of two values with their errors (e.g. read back from JSON)."""
    d = abs(a - b)
    return int(d <= a_error) + int(d <= b_error)


def train_on_split(x: np.ndarray, y: np.ndarray, split: LabelSplit, regressor: Regressor) -> np.ndarray:
    """Fit ``regressor`` on the training subset only; its predictions on every configuration."""
    if len(split.train) < 2:
        raise ValueError(f"estimator: N_TR = {len(split.train)} training configurations; allowed: 2 or more")
    x = np.asarray(x, dtype=float)
    y = _at(y, split.train)
    return np.asarray(regressor.fit(x[split.train], y[split.train]).predict(x), dtype=float)
