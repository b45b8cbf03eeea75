"""Krylov solvers and rational approximations."""

from .chebyshev import chebyshev_power
from .cg import SolveInfo, SolverError, cg, inner, multishift_cg, norm2
from .rational import RationalApproximation, zolotarev_inverse_sqrt

__all__ = [
    "RationalApproximation",
    "SolveInfo",
    "SolverError",
    "cg",
    "chebyshev_power",
    "inner",
    "multishift_cg",
    "norm2",
    "zolotarev_inverse_sqrt",
]
