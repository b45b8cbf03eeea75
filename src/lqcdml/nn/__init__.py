"""Neural networks: periodic convolutions, normalizing-flow layers and models."""

from .affine import AffineCoupling, checkerboard_masks, phi4_flow
from .conv import PeriodicConv, conv_net
from .flow import FlowModel, NormalPrior, UniformAnglePrior
from .u1_equivariant import U1EquivariantCoupling, u1_flow

__all__ = [
    "AffineCoupling",
    "FlowModel",
    "NormalPrior",
    "PeriodicConv",
    "U1EquivariantCoupling",
    "UniformAnglePrior",
    "checkerboard_masks",
    "conv_net",
    "phi4_flow",
    "u1_flow",
]
