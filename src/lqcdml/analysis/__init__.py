"""Statistical analysis (pyerrors bridge) and exact reference results."""

from .errors import Estimate, derived_estimate, estimate, to_obs

__all__ = ["Estimate", "derived_estimate", "estimate", "to_obs"]
