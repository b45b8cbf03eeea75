"""Affine coupling layers with checkerboard masks for real scalar fields.

Fields ``[B, L_0, ..., L_{d-1}]``. A layer with mask ``m`` (1 on frozen sites) maps
``y = m x + (1 - m) (x e^{s(m x)} + t(m x))``, where ``(s, t)`` come from a periodic
convolutional network of the frozen sites; ``log|det dy/dx| = sum_{active} s``
(Dinh et al., arXiv:1605.08803; Albergo et al., arXiv:1904.12072 for lattice fields).
"""

from __future__ import annotations

import torch
from torch import nn

from ..lattice import checkerboard
from .conv import conv_net
from .flow import FlowModel, NormalPrior

__all__ = ["AffineCoupling", "checkerboard_masks", "phi4_flow"]


def checkerboard_masks(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Even and odd site masks as float tensors ``[L...]``."""
    even = checkerboard(shape, 0).to(torch.get_default_dtype())
    return even, 1 - even


class AffineCoupling(nn.Module):
    """One affine coupling: sites with ``frozen = 1`` condition the others."""

    def __init__(self, frozen: torch.Tensor, net: nn.Module) -> None:
        super().__init__()
        self.register_buffer("frozen", frozen.clone())
        self.net = net

    def _scale_shift(self, x_frozen: torch.Tensor):
        out = self.net(x_frozen.unsqueeze(1))
        active = 1 - self.frozen
        return out[:, 0] * active, out[:, 1] * active

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_frozen = x * self.frozen
        s, t = self._scale_shift(x_frozen)
        y = x_frozen + (1 - self.frozen) * (x * torch.exp(s) + t)
        return y, s.flatten(1).sum(1)

    def reverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y_frozen = y * self.frozen
        s, t = self._scale_shift(y_frozen)
        x = y_frozen + (1 - self.frozen) * (y - t) * torch.exp(-s)
        return x, -s.flatten(1).sum(1)


def phi4_flow(
    shape: tuple[int, ...],
    n_layers: int = 16,
    hidden: tuple[int, ...] = (8, 8),
    kernel: int = 3,
    activation: str = "leaky_relu",
    prior_scale: float = 1.0,
) -> FlowModel:
    """Normal prior (width ``prior_scale``) and ``n_layers`` affine couplings with alternating checkerboards.

    The conditioner is ``Conv(1 -> h_1) - act - ... - Conv(h_k -> 2) - tanh`` with
    periodic padding (the architecture of the flow tutorial, arXiv:2101.08176).
    """
    if n_layers < 1:
        raise ValueError(f"phi4_flow: n_layers = {n_layers}; allowed: >= 1")
    even, odd = checkerboard_masks(tuple(shape))
    dim = len(shape)
    layers = [
        AffineCoupling(even if i % 2 == 0 else odd, conv_net(dim, 1, 2, list(hidden), kernel, activation, "tanh"))
        for i in range(n_layers)
    ]
    return FlowModel(NormalPrior(tuple(shape), prior_scale), layers)
