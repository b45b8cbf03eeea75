"""From a resolved config to runtime objects: actions, samplers, start fields, models,
trainers and measurements, each asked of its kind. No store I/O (that is ``driver``)."""

from ..kinds.observables import expensive_measurement, measurement_plan
from ..kinds.trainers import initial_model, trainer_kind
from .objects import (
    build_action,
    build_fermion_operator,
    build_fermion_terms,
    build_group,
    build_model,
    build_sampler,
    cheap_observable,
    field_dtype,
    field_shape,
    initial_fields,
    site_shape,
    torch_device,
    torch_threads,
)

__all__ = [
    "build_action",
    "build_fermion_operator",
    "build_fermion_terms",
    "build_group",
    "build_model",
    "build_sampler",
    "cheap_observable",
    "expensive_measurement",
    "field_dtype",
    "field_shape",
    "initial_fields",
    "initial_model",
    "measurement_plan",
    "site_shape",
    "torch_device",
    "torch_threads",
    "trainer_kind",
]
