"""What an estimator kind's estimate reads and reports, shared by the estimates of the kinds (``kinds.estimators``).

This layer does not import ``config`` or ``store``: the caller (``driver.estimate``) opens
the stores, checks them against the ensemble's chain and builds the theory's objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
import xarray as xr

from ..errors import LqcdmlError
from ..lattice import Manifold
from ..theories import Action
from .cv_problems import ControlVariateProblem
from .ensemble import EnsembleIndex

__all__ = ["EnsembleConfig", "EstimatorSources", "EstimateInputError", "Log", "obs_summary"]

#: ``config.schema.EnsembleConfig`` (this layer reads its attributes, it does not import it)
EnsembleConfig = Any
#: where an estimate reports its progress, one line at a time
Log = Callable[[str], None]


class EstimateInputError(LqcdmlError, RuntimeError):
    """Stores that do not hold what the estimator needs; the message says what is missing."""


class EstimatorSources(Protocol):
    """What an estimator reads, opened and checked against the ensemble's chain by the caller.

    ``ensemble``: its name; ``n_measured``: entries of the whole ensemble (replicas x chains x
    configurations after ``chain.n_therm``); ``per_chain``: measured configurations of one chain."""

    ensemble: str
    n_measured: int
    per_chain: int

    def observables(self) -> tuple[list[xr.Dataset], list[xr.Dataset]]:
        """The cheap and the expensive observable stores, each in job-replica order."""
        ...

    def configurations(self) -> tuple[torch.Tensor, EnsembleIndex]:
        """The measured configurations of every chain, flat replica-major, on the job's device."""
        ...

    def action(self) -> Action:
        """The theory's action (its force drives the Schwinger-Dyson control variates)."""
        ...

    def group(self) -> Manifold:
        """The theory's field manifold."""
        ...

    def control_variate(self) -> ControlVariateProblem:
        """The theory's control-variate problem (its observable and network)."""
        ...


def obs_summary(obs) -> dict:
    """``value``, ``error`` and the largest ``tau_int`` of a ``pyerrors.Obs`` (Gamma method)."""
    obs.gamma_method()
    taus = [float(t) for t in getattr(obs, "e_tauint", {}).values()]
    return {"value": float(obs.value), "error": float(obs.dvalue), "tau_int": max(taus) if taus else 0.5}
