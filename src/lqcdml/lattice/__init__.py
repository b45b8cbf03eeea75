"""Geometry, groups (U(1), SU(N)), per-chain randomness and Lie-algebra gradients."""

from .configurations import abelian_flux_links
from .gauge_transform import gauge_transform
from .geometry import checkerboard, coordinates, parity, shift, volume
from .gradient import algebra_gradient
from .groups import SU, U1, GaugeGroup, Manifold, Real, group_from_name
from .random import generator_states, make_generators, rand, randn, restore_generators

__all__ = [
    "SU",
    "U1",
    "GaugeGroup",
    "Manifold",
    "Real",
    "abelian_flux_links",
    "algebra_gradient",
    "checkerboard",
    "coordinates",
    "gauge_transform",
    "generator_states",
    "group_from_name",
    "make_generators",
    "parity",
    "rand",
    "randn",
    "restore_generators",
    "shift",
    "volume",
]
