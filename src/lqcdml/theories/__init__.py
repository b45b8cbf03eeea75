"""Lattice actions with analytic forces."""

from .base import Action, BoundPseudofermion, PseudofermionAction, autograd_force
from .gauge import WilsonGaugeAction, planes, plaquette_field, staple_sum
from .phi4 import Phi4Action
from .staggered import StaggeredOperator, StaggeredPseudofermion, staggered_phases
from .wilson_fermion import WilsonOperator, WilsonPseudofermion, gamma5, gamma_matrices

__all__ = [
    "Action",
    "BoundPseudofermion",
    "PseudofermionAction",
    "Phi4Action",
    "StaggeredOperator",
    "StaggeredPseudofermion",
    "WilsonOperator",
    "WilsonPseudofermion",
    "WilsonGaugeAction",
    "autograd_force",
    "planes",
    "plaquette_field",
    "staple_sum",
    "gamma5",
    "gamma_matrices",
    "staggered_phases",
]
