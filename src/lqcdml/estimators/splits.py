"""Labelled, training, bias-correction and unlabelled subsets, strided in Monte Carlo time.

docs/reference.md#ml-bias-corrected-estimators: of ``N`` configurations ``N_LB = round(N R_LB)``
are labelled (the expensive observable is measured there), ``N_TR = round(N_LB R_TR)`` of
those train the regressor, the other ``N_BC = N_LB - N_TR`` correct its bias, and the
``N_UL = N - N_LB`` unlabelled ones only carry cheap features.

Subsets are strided: the labelled entries are spread evenly over the replica-major order
(so every replica gets its share, at a constant stride in Monte Carlo time), and the
training entries evenly over the labelled ones. The only randomness is the phase of each
stride, drawn from ``seed``: the same seed gives the same split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LabelSplit", "strided_split", "strided_subset", "cross_fit_folds"]


def strided_subset(n: int, k: int, phase: float) -> np.ndarray:
    """``k`` of ``range(n)`` at a constant stride ``n / k``: ``floor((j + phase) n / k)``."""
    if not 0 <= k <= n:
        raise ValueError(f"strided_subset: k = {k}; allowed: 0 <= k <= n = {n}")
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    return np.floor((np.arange(k) + phase) * (n / k)).astype(np.int64)


@dataclass(frozen=True)
class LabelSplit:
    """Positions (into the flat, replica-major measurement arrays) of each subset."""

    n: int
    labelled: np.ndarray
    train: np.ndarray
    bias_correction: np.ndarray
    unlabelled: np.ndarray

    @property
    def sizes(self) -> dict[str, int]:
        return {
            "N": self.n,
            "N_LB": len(self.labelled),
            "N_TR": len(self.train),
            "N_BC": len(self.bias_correction),
            "N_UL": len(self.unlabelled),
        }


def strided_split(n: int, r_lb: float, r_tr: float, seed: int) -> LabelSplit:
    """The split of docs/reference.md#ml-bias-corrected-estimators for ``n`` measurements,
    fixed by ``seed``."""
    if not 0.0 < r_lb <= 1.0:
        raise ValueError(f"estimator.r_lb = {r_lb}; allowed: 0 < r_lb <= 1")
    if not 0.0 <= r_tr < 1.0:
        raise ValueError(f"estimator.r_tr = {r_tr}; allowed: 0 <= r_tr < 1 (some labelled data must correct the bias)")
    n_lb = int(round(n * r_lb))
    n_tr = int(round(n_lb * r_tr))
    if n_lb - n_tr < 1:
        raise ValueError(f"estimator: r_lb = {r_lb}, r_tr = {r_tr} leave no bias-correction set of {n} configurations")
    phase_lb, phase_tr = np.random.default_rng(seed).random(2)
    labelled = strided_subset(n, n_lb, phase_lb)
    in_train = np.zeros(n_lb, dtype=bool)
    in_train[strided_subset(n_lb, n_tr, phase_tr)] = True
    unlabelled = np.setdiff1d(np.arange(n), labelled)
    return LabelSplit(n, labelled, labelled[in_train], labelled[~in_train], unlabelled)


def cross_fit_folds(labelled: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` strided folds of the labelled positions: ``[(train, correct), ...]``.

    Fold ``j`` corrects with ``labelled[j::k]`` and trains on every other labelled entry,
    so no configuration corrects the regressor that saw it.
    """
    if not 2 <= k <= len(labelled):
        raise ValueError(f"estimator.folds = {k}; allowed: 2 <= folds <= N_LB = {len(labelled)}")
    labelled = np.asarray(labelled, dtype=np.int64)
    folds = []
    for j in range(k):
        mask = np.zeros(len(labelled), dtype=bool)
        mask[j::k] = True
        folds.append((labelled[~mask], labelled[mask]))
    return folds
