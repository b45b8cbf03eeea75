"""Krylov solvers and rational approximations."""

from .cg import IterationCount, SolveInfo, SolverError, cg, count_iterations, inner, multishift_cg, norm2
from .rational import RationalApproximation, zolotarev_inverse_sqrt
from .remez import RemezError, rational_power, rational_ratio, remez_power

__all__ = [
    "IterationCount",
    "count_iterations",
    "RationalApproximation",
    "RemezError",
    "SolveInfo",
    "SolverError",
    "cg",
    "inner",
    "multishift_cg",
    "norm2",
    "rational_power",
    "rational_ratio",
    "remez_power",
    "zolotarev_inverse_sqrt",
]
