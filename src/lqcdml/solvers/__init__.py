"""Krylov solvers and rational approximations."""

from .cg import SolveInfo, SolverError, cg, inner, multishift_cg, norm2
from .rational import RationalApproximation, zolotarev_inverse_sqrt
from .remez import RemezError, rational_power, remez_power

__all__ = [
    "RationalApproximation",
    "RemezError",
    "SolveInfo",
    "SolverError",
    "cg",
    "inner",
    "multishift_cg",
    "norm2",
    "rational_power",
    "remez_power",
    "zolotarev_inverse_sqrt",
]
