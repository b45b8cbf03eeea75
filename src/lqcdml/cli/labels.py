"""The labelled split of an ensemble, shared by ``measure --expensive`` and ``estimate``.

It runs over the measured configurations in replica-major order (global replica
``(job replica - 1) * n_chains + chain + 1``, then the configurations after
``chain.n_therm``), so both commands find the same labelled entries from the config alone.
"""

from __future__ import annotations

import numpy as np

from ..config.estimators import measured_configs, n_measured
from ..config.schema import EnsembleConfig
from ..estimators.splits import LabelSplit, strided_split

__all__ = ["label_split", "flat_position"]


def label_split(ens: EnsembleConfig, r_lb: float | None = None, r_tr: float | None = None) -> LabelSplit:
    """The split of the production point (or of ``(r_lb, r_tr)``), fixed by ``estimator.seed``."""
    es = ens.estimator
    return strided_split(n_measured(ens), es.r_lb if r_lb is None else r_lb, es.r_tr if r_tr is None else r_tr, es.seed)


def flat_position(ens: EnsembleConfig, global_replica: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Flat index of (global replica from 1, configuration offset after the cut)."""
    return (np.asarray(global_replica) - 1) * measured_configs(ens) + np.asarray(offset)
