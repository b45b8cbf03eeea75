"""Observables: gauge (plaquette, loops, charges, gradient flow) and scalar."""

from .fermion import (
    apply_inverse,
    chiral_condensate,
    noise_vectors,
    pion_correlator,
    trace_inverse_powers,
)
from .gauge import (
    clover_field_strength,
    energy_density,
    plaquette,
    polyakov_loop,
    topological_charge,
    topological_charge_u1_2d,
    wilson_loop,
)
from .gradient_flow import (
    FlowResult,
    flow_action,
    flow_step_euler,
    flow_step_rk3,
    gradient_flow,
    scale_t0,
)
from .scalar import (
    abs_magnetization,
    magnetization,
    timeslice_correlator,
    two_point_function,
    two_point_susceptibility,
    zero_momentum_correlator,
)

__all__ = [
    "FlowResult",
    "abs_magnetization",
    "apply_inverse",
    "chiral_condensate",
    "noise_vectors",
    "pion_correlator",
    "trace_inverse_powers",
    "clover_field_strength",
    "energy_density",
    "flow_action",
    "flow_step_euler",
    "flow_step_rk3",
    "gradient_flow",
    "magnetization",
    "plaquette",
    "polyakov_loop",
    "scale_t0",
    "topological_charge",
    "topological_charge_u1_2d",
    "two_point_function",
    "two_point_susceptibility",
    "timeslice_correlator",
    "wilson_loop",
    "zero_momentum_correlator",
]
