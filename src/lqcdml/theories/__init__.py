"""Lattice actions with analytic forces."""

from .base import Action, autograd_force
from .gauge import WilsonGaugeAction, planes, plaquette_field, staple_sum
from .phi4 import Phi4Action

__all__ = [
    "Action",
    "Phi4Action",
    "WilsonGaugeAction",
    "autograd_force",
    "planes",
    "plaquette_field",
    "staple_sum",
]
