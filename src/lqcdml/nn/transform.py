"""The transform contract: invertible layers with exact log-Jacobians, and their composition.

An ``InvertibleLayer`` maps a batch of fields ``x`` ``[B, ...]`` to ``(y, log|det dy/dx|)``
and back: ``reverse(y) = (x, log|det dx/dy|)``; the log-Jacobians are one real value per
configuration, ``[B]``, in the real dtype of the fields (float64 for complex128 links).
The Jacobian is taken in the coordinates of the field's domain: the real values of a
scalar field, the angles of U(1) links, the Haar measure of SU(N) links. Every flow layer
of ``nn`` subclasses it, and so does a composition of layers (``Compose``), so that a flow,
a field transformation of HMC and a pulled-back action (``samplers.pullback``) accept any
of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol, cast, runtime_checkable

import torch
from torch import nn

__all__ = ["Compose", "InvertibleLayer", "PullbackForce", "real_dtype"]


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of fields of ``dtype`` (complex128 -> float64): their precision and the
    dtype of their log-Jacobians."""
    return {torch.complex128: torch.float64, torch.complex64: torch.float32}.get(dtype, dtype)


class InvertibleLayer(nn.Module, ABC):
    """A bijection of field space with its exact log-Jacobian (see the module docstring)."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y, log|det dy/dx|)``: shape of ``x``, ``[B]``."""

    @abstractmethod
    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dy|)``: shape of ``y``, ``[B]``; the inverse of ``forward``."""


class Compose(InvertibleLayer):
    """``f_K o ... o f_1``: the layers applied in order, their log-Jacobians summed."""

    def __init__(self, layers: Sequence[InvertibleLayer]) -> None:
        super().__init__()
        layers = list(layers)
        bad = [type(layer).__name__ for layer in layers if not isinstance(layer, InvertibleLayer)]
        if bad:
            raise TypeError(f"compose: layers of type {bad}; allowed: InvertibleLayer subclasses")
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f(x), log|det df/dx|)``."""
        log_det = torch.zeros(x.shape[0], dtype=real_dtype(x.dtype), device=x.device)
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(f^{-1}(y), log|det df^{-1}/dy|)``: the layers' inverses in reverse order."""
        log_det = torch.zeros(y.shape[0], dtype=real_dtype(y.dtype), device=y.device)
        for layer in reversed(self.layers):
            y, ld = cast(InvertibleLayer, layer).reverse(y)
            log_det = log_det + ld
        return y, log_det


@runtime_checkable
class PullbackForce(Protocol):
    """A transform ``F`` that computes the force of a pulled-back action itself (a written-out
    vector-Jacobian product): ``pullback_force(V, target_force)`` is ``d/dw [S(F(V)) - log|det
    dF/dV|]`` in the group's force convention, given ``target_force(U) = dS/dw`` at ``U``.
    ``samplers.PulledBackAction`` uses it in place of autograd when the transform declares it."""

    def pullback_force(
        self, fields: torch.Tensor, target_force: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor: ...
