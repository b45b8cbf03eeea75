"""The labelled split of an ensemble's measured entries, shared by ``measure --expensive``
and the bias-corrected estimate.

Entries run over the measured configurations in replica-major order: global replica
``(job replica - 1) * n_chains + chain + 1``, then the configurations after ``chain.n_therm``.
``n`` is the number of entries of the whole ensemble and ``per_chain`` the measured
configurations of one chain (the config's ``n_measured`` and ``measured_configs``), so the
expensive measurement and the estimate find the same labelled entries from the config alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .splits import LabelSplit, strided_split

__all__ = ["label_split", "flat_position"]


def label_split(es: Any, n: int, r_lb: float | None = None, r_tr: float | None = None) -> LabelSplit:
    """The split of the production point ``(es.r_lb, es.r_tr)`` (or of ``(r_lb, r_tr)``) of
    ``n`` entries, fixed by ``es.seed`` (``es``: the ensemble's ``estimator`` section)."""
    return strided_split(n, es.r_lb if r_lb is None else r_lb, es.r_tr if r_tr is None else r_tr, es.seed)


def flat_position(per_chain: int, global_replica: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Flat index of (global replica from 1, configuration offset after the cut)."""
    return (np.asarray(global_replica) - 1) * per_chain + np.asarray(offset)
