"""The Schwinger-Dyson control-variate problem of a theory: the observable ``O`` whose mean the
control variate improves and the untrained vector field ``g`` whose divergence term cancels
its noise. A theory kind names its problem (``kinds.TheoryKind.control_variate``); the
estimate (``pipeline_cv``) asks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch

from ..lattice import GaugeGroup, Manifold
from ..nn import PlaquetteVectorField, ShiftedMLP
from ..observables import plaquette, timeslice_correlator

__all__ = ["ControlVariateProblem", "SCALAR_TIMESLICE", "GAUGE_PLAQUETTE"]


@dataclass(frozen=True)
class ControlVariateProblem:
    """``observable(th, x, group) -> (name, O [N])`` of configurations ``x [N, ...]`` of theory
    section ``th``; ``network(th, widths, x) -> g``, untrained, of hidden ``widths`` (``()``:
    linear) in the dtype and on the device of ``x``."""

    observable: Callable[[Any, torch.Tensor, Manifold], tuple[str, torch.Tensor]]
    network: Callable[[Any, tuple[int, ...], torch.Tensor], ShiftedMLP | PlaquetteVectorField]


def _timeslice(th, x: torch.Tensor, group: Manifold) -> tuple[str, torch.Tensor]:
    t = int(th.lattice[0]) // 2
    return f"timeslice_correlator(t = {t})", timeslice_correlator(x, t)


def _plaquette(th, x: torch.Tensor, group: Manifold) -> tuple[str, torch.Tensor]:
    return "plaquette", plaquette(x, cast(GaugeGroup, group))  # a gauge theory's group


#: a real scalar field: the time-slice correlator at ``L_0 / 2``, a shifted MLP ``g``
SCALAR_TIMESLICE = ControlVariateProblem(
    _timeslice,
    lambda th, widths, x: ShiftedMLP(tuple(th.lattice), tuple(widths), dtype=x.dtype).to(x.device),
)
#: a gauge field: the plaquette, a vector field of plaquette features ``g``
GAUGE_PLAQUETTE = ControlVariateProblem(
    _plaquette,
    lambda th, widths, x: PlaquetteVectorField(tuple(widths), dtype=x.dtype).to(x.device),
)
