"""The catalogue of configurable kinds: theories, samplers, models, trainers, estimators and
observables, one registry and one module per family.

Importing this package registers the built-in kinds. A new kind is one module that defines
it and one ``REGISTRY.register(...)``; the config language (``lqcdml.config``) finds the
catalogue through ``config.catalogue`` and types each section by the kind it selects.
"""

from __future__ import annotations

from . import estimators, models, observables, samplers, theories, trainers  # noqa: F401  (register the kinds)
from .estimators import ESTIMATORS, EstimatorKind
from .models import MODELS, ModelKind
from .observables import OBSERVABLES, ObservableKind
from .registry import FunctionRef, Kind, Registry, resolve
from .samplers import SAMPLERS, BuildContext, SamplerKind
from .sections import type_ensemble
from .theories import THEORIES, TheoryKind, theory_kind
from .trainers import TRAINERS, TrainerKind, trainer_kind
from .validate import validate_ensemble, validate_experiment

__all__ = [
    "CATALOGUE",
    "ESTIMATORS",
    "MODELS",
    "OBSERVABLES",
    "SAMPLERS",
    "THEORIES",
    "TRAINERS",
    "BuildContext",
    "EstimatorKind",
    "Kind",
    "ModelKind",
    "ObservableKind",
    "Registry",
    "FunctionRef",
    "resolve",
    "SamplerKind",
    "TheoryKind",
    "TrainerKind",
    "theory_kind",
    "trainer_kind",
    "type_ensemble",
    "validate_ensemble",
    "validate_experiment",
]


class _Catalogue:
    """The built-in catalogue (``config.catalogue.Catalogue``)."""

    type_ensemble = staticmethod(type_ensemble)
    validate_ensemble = staticmethod(validate_ensemble)
    validate_experiment = staticmethod(validate_experiment)


CATALOGUE = _Catalogue()
