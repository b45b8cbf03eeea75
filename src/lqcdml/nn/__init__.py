"""Neural networks: periodic convolutions, normalizing-flow layers and models."""

from .affine import AffineCoupling, checkerboard_masks, phi4_flow
from .conv import PeriodicConv, conv_net
from .flow import FlowModel, NormalPrior, UniformAnglePrior
from .u1_equivariant import U1EquivariantCoupling, u1_flow
from .u1_plaquette import PlaquetteCoupling, plaquette_change_links, u1_plaquette_flow

__all__ = [
    "AffineCoupling",
    "FlowModel",
    "NormalPrior",
    "PeriodicConv",
    "PlaquetteCoupling",
    "U1EquivariantCoupling",
    "UniformAnglePrior",
    "checkerboard_masks",
    "conv_net",
    "phi4_flow",
    "plaquette_change_links",
    "u1_flow",
    "u1_plaquette_flow",
]
