"""Lattice actions with analytic forces."""

from .base import Action, BoundPseudofermion, PseudofermionAction, autograd_force
from .gauge import WilsonGaugeAction, planes, plaquette_field, staple_sum
from .hasenbusch import StaggeredRatio, WilsonRatio, check_hasenbusch_masses, hasenbusch_split, ratio_at_mass
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
    "StaggeredRatio",
    "WilsonOperator",
    "WilsonPseudofermion",
    "WilsonRatio",
    "WilsonGaugeAction",
    "autograd_force",
    "check_hasenbusch_masses",
    "hasenbusch_split",
    "planes",
    "plaquette_field",
    "ratio_at_mass",
    "staple_sum",
    "gamma5",
    "gamma_matrices",
    "staggered_phases",
]
