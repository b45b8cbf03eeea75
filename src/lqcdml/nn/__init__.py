"""Neural networks: periodic convolutions, the transform contract (invertible layers, priors),
normalizing-flow layers and models, gauge-covariant layers (trainable stout smearing, CASK
attention), control-variate vector fields."""

from .affine import AffineCoupling, CheckerboardFlow, checkerboard_masks, phi4_flow
from .cask import CASKBlock, cask_net
from .control_variates import PlaquetteVectorField, ShiftedMLP, VectorField, shifted_fields
from .conv import PeriodicConv, conv_net
from .flow import FlowModel
from .prior import Domain, HaarPrior, NormalPrior, Prior, UniformAnglePrior
from .site_conv import SiteConvNet
from .stout import LOOP_TYPES, GaugeCovariantNet, StoutLayer, stout_net
from .su_equivariant import SUEquivariantCoupling, su_flow
from .transform import Compose, InvertibleLayer
from .u1_equivariant import U1EquivariantCoupling, u1_flow
from .u1_plaquette import PlaquetteCoupling, plaquette_change_links, u1_plaquette_flow

__all__ = [
    "PlaquetteVectorField",
    "ShiftedMLP",
    "VectorField",
    "shifted_fields",
    "CASKBlock",
    "GaugeCovariantNet",
    "LOOP_TYPES",
    "StoutLayer",
    "cask_net",
    "stout_net",
    "AffineCoupling",
    "CheckerboardFlow",
    "Compose",
    "Domain",
    "FlowModel",
    "InvertibleLayer",
    "NormalPrior",
    "PeriodicConv",
    "PlaquetteCoupling",
    "Prior",
    "SiteConvNet",
    "U1EquivariantCoupling",
    "UniformAnglePrior",
    "HaarPrior",
    "SUEquivariantCoupling",
    "checkerboard_masks",
    "conv_net",
    "phi4_flow",
    "plaquette_change_links",
    "u1_flow",
    "su_flow",
    "u1_plaquette_flow",
]
