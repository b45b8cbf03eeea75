"""Where each measurement sits in Monte Carlo time: the bridge from flat arrays to ``pyerrors``.

Estimators work on flat arrays of ``n`` measurements ordered replica-major (replica 0's
configurations in Monte Carlo order, then replica 1's, ...). ``EnsembleIndex`` records the
replica and configuration index of each entry; the mean of any subset becomes a
``pyerrors.Obs`` on the replicas ``name|r<rr>`` with the subset's configuration indices as
``idl``, so a subset is a gapped chain: autocorrelations and the correlations between means
over different subsets of one ensemble are kept by the Gamma method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.errors import pe

__all__ = ["EnsembleIndex"]

MIN_PER_REPLICA = 5  # pyerrors' smallest chain


@dataclass(frozen=True)
class EnsembleIndex:
    """Replica and configuration index of each of ``n`` flat measurements.

    ``replica`` and ``config`` are integer arrays ``[n]``; within a replica ``config``
    increases strictly (Monte Carlo order). Replica ``r`` is named ``f"{name}|r{r:02d}"``.

    ``pooled = True`` lays the (independent) replicas end to end as one chain
    ``f"{name}|pooled"``, replica ``k`` shifted by ``k`` times twice the longest replica's
    span: no two replicas come closer than a whole chain, so the Gamma method's window
    never pairs them. Small subsets of many short chains need it (pyerrors wants at least
    5 values per replica; a labelled 1 % of 32 chains of 120 has about one per chain).
    """

    name: str
    replica: np.ndarray
    config: np.ndarray
    pooled: bool = False

    def __post_init__(self) -> None:
        replica = np.asarray(self.replica, dtype=np.int64)
        config = np.asarray(self.config, dtype=np.int64)
        if replica.shape != config.shape or replica.ndim != 1:
            raise ValueError(f"EnsembleIndex: replica {replica.shape} and config {config.shape}; allowed: equal 1D shapes")
        order = np.lexsort((config, replica))
        if not np.array_equal(order, np.arange(len(order))) or np.any(
            (np.diff(replica) == 0) & (np.diff(config) <= 0)
        ):
            raise ValueError("EnsembleIndex: entries must be replica-major with configurations increasing in each replica")
        object.__setattr__(self, "replica", replica)
        object.__setattr__(self, "config", config)
        if self.pooled and len(config):
            ranks = np.unique(replica, return_inverse=True)[1]
            span = int(max(config[replica == r].max() - config[replica == r].min() for r in np.unique(replica))) + 1
            object.__setattr__(self, "_pooled_idl", ranks * 2 * span + (config - config.min()) + 1)

    @classmethod
    def grid(cls, name: str, n_config: int, n_replica: int, first: int = 0, pooled: bool = False) -> "EnsembleIndex":
        """``n_replica`` chains of ``n_config`` consecutive configurations ``first, first + 1, ...``."""
        return cls(name, np.repeat(np.arange(n_replica), n_config),
                   np.tile(np.arange(first, first + n_config), n_replica), pooled)

    def __len__(self) -> int:
        return len(self.config)

    def mean(self, values: np.ndarray, positions: np.ndarray | None = None) -> pe.Obs:
        """Mean of ``values[positions]`` (all entries when ``None``) as a ``pyerrors.Obs``.

        ``values`` is ``[n]``. Replicas with fewer than 5 selected entries are dropped
        (pyerrors' minimum); a subset with no usable replica is an error.
        """
        values = np.asarray(values, dtype=float)
        if values.shape != self.config.shape:
            raise ValueError(f"EnsembleIndex.mean: values of shape {values.shape}; allowed: ({len(self)},)")
        pos = np.arange(len(self)) if positions is None else np.sort(np.asarray(positions, dtype=np.int64))
        if self.pooled:
            if len(pos) < MIN_PER_REPLICA:
                raise ValueError(f"EnsembleIndex.mean: a subset of {len(pos)} entries; allowed: {MIN_PER_REPLICA} or "
                                 "more (raise the labelled fraction)")
            return pe.Obs([values[pos]], [f"{self.name}|pooled"], idl=[[int(i) for i in self._pooled_idl[pos]]])
        samples, names, idls = [], [], []
        for r in np.unique(self.replica[pos]):
            here = pos[self.replica[pos] == r]
            if len(here) < MIN_PER_REPLICA:
                continue
            samples.append(values[here])
            names.append(f"{self.name}|r{int(r):02d}")
            idls.append([int(c) for c in self.config[here]])
        if not samples:
            raise ValueError(
                f"EnsembleIndex.mean: a subset of {len(pos)} entries has no replica with {MIN_PER_REPLICA} or more; "
                "allowed: larger subsets (raise the labelled fraction)"
            )
        return pe.Obs(samples, names, idl=idls)
