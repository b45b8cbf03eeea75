"""Where each measurement sits in Monte Carlo time: the bridge from flat arrays to ``pyerrors``.

Estimators work on flat arrays of ``n`` measurements ordered replica-major (replica 0's
configurations in Monte Carlo order, then replica 1's, ...). ``EnsembleIndex`` records the
replica and configuration index of each entry; the mean of any subset becomes a
``pyerrors.Obs`` on the replicas ``name|r<rr>`` with the subset's configuration indices as
``idl``, so a subset is a gapped chain: autocorrelations and the correlations between means
over different subsets of one ensemble are kept by the Gamma method.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

with warnings.catch_warnings():  # pyerrors' import raises a scipy DeprecationWarning (docs/architecture.md#pitfalls)
    warnings.simplefilter("ignore", DeprecationWarning)
    import pyerrors as pe

__all__ = ["EnsembleIndex"]

MIN_PER_REPLICA = 5  # pyerrors' smallest chain


@dataclass(frozen=True)
class EnsembleIndex:
    """Replica and configuration index of each of ``n`` flat measurements.

    ``replica`` and ``config`` are integer arrays ``[n]``; within a replica ``config``
    increases strictly (Monte Carlo order). Replica ``r`` is named ``f"{name}|r{r:02d}"``.

    A subset with 5 or more entries in every chain is one pyerrors replica per chain
    (``name|rNN``, Gamma method). A sparser subset (a labelled 1 % of 32 chains of 120 has
    about one value per chain; pyerrors wants at least 5 per replica) is strided by more
    than a fifth of a chain: its values are taken as independent, laid end to end in the
    pseudo-ensemble ``name~sparse|pooled`` whose Gamma-method window is fixed at zero
    (``S = 0`` for that name in pyerrors' ``Obs.S_dict``: the automatic window on a few dozen
    independent values overestimated the error by 10-15 %). The sparse subsets of one
    estimate (labelled, training, bias correction) share that pseudo-ensemble, so their
    correlations (common configurations) are kept; the correlation between a sparse and a
    dense term (through neighbouring configurations) is left out: a few per cent of the
    variance (tested). Pooling a *dense* subset would be wrong: each chain's offset from the
    global mean then looks like a correlation over the whole chain (tau_int 3.1 -> 8.0 on
    the two-colour ensemble of ``paper_ama``).
    """

    name: str
    replica: np.ndarray
    config: np.ndarray
    _pooled_idl: np.ndarray = field(init=False, repr=False, compare=False)  # set when there are entries

    def __post_init__(self) -> None:
        replica = np.asarray(self.replica, dtype=np.int64)
        config = np.asarray(self.config, dtype=np.int64)
        if replica.shape != config.shape or replica.ndim != 1:
            raise ValueError(
                f"EnsembleIndex: replica {replica.shape} and config {config.shape}; allowed: equal 1D shapes"
            )
        order = np.lexsort((config, replica))
        if not np.array_equal(order, np.arange(len(order))) or np.any((np.diff(replica) == 0) & (np.diff(config) <= 0)):
            raise ValueError(
                "EnsembleIndex: entries must be replica-major with configurations increasing in each replica"
            )
        object.__setattr__(self, "replica", replica)
        object.__setattr__(self, "config", config)
        if len(config):
            ranks = np.unique(replica, return_inverse=True)[1]
            span = int(max(config[replica == r].max() - config[replica == r].min() for r in np.unique(replica))) + 1
            object.__setattr__(self, "_pooled_idl", ranks * 2 * span + (config - config.min()) + 1)

    @classmethod
    def grid(cls, name: str, n_config: int, n_replica: int, first: int = 0) -> EnsembleIndex:
        """``n_replica`` chains of ``n_config`` consecutive configurations ``first, first + 1, ...``."""
        return cls(
            name, np.repeat(np.arange(n_replica), n_config), np.tile(np.arange(first, first + n_config), n_replica)
        )

    def __len__(self) -> int:
        return len(self.config)

    def mean(self, values: np.ndarray, positions: np.ndarray | None = None) -> pe.Obs:
        """Mean of ``values[positions]`` (all entries when ``None``) as a ``pyerrors.Obs``.

        ``values`` is ``[n]``; per chain, or pooled where a chain has fewer than 5 of the
        selected entries (class docstring). A subset of fewer than 5 entries is an error.
        """
        values = np.asarray(values, dtype=float)
        if values.shape != self.config.shape:
            raise ValueError(f"EnsembleIndex.mean: values of shape {values.shape}; allowed: ({len(self)},)")
        pos = np.arange(len(self)) if positions is None else np.sort(np.asarray(positions, dtype=np.int64))
        if len(pos) < MIN_PER_REPLICA:
            raise ValueError(
                f"EnsembleIndex.mean: a subset of {len(pos)} entries; allowed: {MIN_PER_REPLICA} or "
                "more (raise the labelled fraction)"
            )
        chains, counts = np.unique(self.replica[pos], return_counts=True)
        if counts.min() < MIN_PER_REPLICA or len(chains) < len(np.unique(self.replica)):
            sparse = f"{self.name}~sparse"
            pe.Obs.S_dict[sparse] = 0.0  # independent values: no autocorrelation window
            return pe.Obs([values[pos]], [f"{sparse}|pooled"], idl=[[int(i) for i in self._pooled_idl[pos]]])
        samples, names, idls = [], [], []
        for r in chains:
            here = pos[self.replica[pos] == r]
            samples.append(values[here])
            names.append(f"{self.name}|r{int(r):02d}")
            idls.append([int(c) for c in self.config[here]])
        return pe.Obs(samples, names, idl=idls)
