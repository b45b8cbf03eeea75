"""Statistical analysis (pyerrors bridge), exact reference results, tables and plots."""

from .errors import (
    Estimate,
    dataarray_to_obs,
    derived_estimate,
    estimate,
    estimate_dataarray,
    to_obs,
)

__all__ = [
    "Estimate",
    "dataarray_to_obs",
    "derived_estimate",
    "estimate",
    "estimate_dataarray",
    "to_obs",
]
