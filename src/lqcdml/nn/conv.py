"""Convolutional networks on the periodic lattice, in any dimension.

Tensors are ``[B, C, L_0, ..., L_{d-1}]``. In one to three dimensions the convolution is
torch's ``Conv{d}d`` with circular padding; in more it is a sum over the ``k^d`` kernel
offsets of rolled inputs (the same operation, written out).
"""

from __future__ import annotations

import itertools
import math
from typing import cast

import torch
from torch import nn

__all__ = ["PeriodicConv", "conv_net", "kernel_offsets"]

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "silu": nn.SiLU, "relu": nn.ReLU}


def kernel_offsets(dim: int, kernel: int) -> list[tuple[int, ...]]:
    """The ``kernel^dim`` site offsets ``(-r..r)^dim``, ``r = kernel // 2``, in the row-major order of
    the kernel index: tap ``k`` reads the input at ``x + offsets[k]`` (both forms of ``PeriodicConv``)."""
    r = kernel // 2
    return list(itertools.product(range(-r, r + 1), repeat=dim))


class PeriodicConv(nn.Module):
    """Convolution with periodic boundaries: ``[B, C_in, L...] -> [B, C_out, L...]`` (odd kernel)."""

    def __init__(
        self, dim: int, c_in: int, c_out: int, kernel: int = 3, bias: bool = True, native: bool | None = None
    ) -> None:
        """``native`` (default: ``dim <= 3``) picks torch's convolution over the rolled sum."""
        super().__init__()
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"PeriodicConv: kernel = {kernel}; allowed: odd >= 1")
        if dim < 1:
            raise ValueError(f"PeriodicConv: dim = {dim}; allowed: >= 1")
        self.dim, self.kernel, self.c_in, self.c_out = dim, kernel, c_in, c_out
        self.native = dim <= 3 if native is None else native
        if self.native and dim > 3:
            raise ValueError(f"PeriodicConv: native convolution for dim = {dim}; allowed: dim <= 3")
        if self.native:
            conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dim - 1]
            self.conv = conv(c_in, c_out, kernel, padding=kernel // 2, padding_mode="circular", bias=bias)
        else:
            fan_in = c_in * kernel**dim
            bound = 1 / math.sqrt(fan_in)
            self.weight = nn.Parameter(torch.empty(kernel**dim, c_out, c_in).uniform_(-bound, bound))
            self.bias = nn.Parameter(torch.empty(c_out).uniform_(-bound, bound)) if bias else None
            self.offsets = kernel_offsets(dim, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.native:
            return self.conv(x)
        dims = tuple(range(2, 2 + self.dim))
        out: torch.Tensor | int = 0
        for w, off in zip(self.weight, self.offsets):
            # out(x) += W_off . in(x + off): roll by -off brings in(x + off) to x
            shifted = torch.roll(x, shifts=tuple(-o for o in off), dims=dims)
            out = out + torch.einsum("oc,bc...->bo...", w, shifted)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, *([1] * self.dim))
        return cast(torch.Tensor, out)  # kernel**dim >= 1 taps: a tensor after the loop


def conv_net(
    dim: int,
    c_in: int,
    c_out: int,
    hidden: list[int] | tuple[int, ...],
    kernel: int = 3,
    activation: str = "leaky_relu",
    final: str | None = "tanh",
) -> nn.Sequential:
    """``Conv -> act -> ... -> Conv -> final``: periodic convolutions with ``hidden`` channels."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"conv_net: activation = {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
    widths = [c_in, *hidden, c_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(PeriodicConv(dim, a, b, kernel))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    if final is not None:
        layers.append(ACTIVATIONS[final]())
    return nn.Sequential(*layers)
