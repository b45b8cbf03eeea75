"""Priors of normalizing flows: base densities that declare the domain and dtype of their fields.

Domains (``Domain``) and their field dtypes at precision float32 / float64:

- ``real``: real scalar fields ``[B, *shape]``, float32 / float64;
- ``angles``: U(1) links as angles in ``[-pi, pi)``, ``[B, *shape]``, float32 / float64;
- ``su_n``: SU(N) matrices ``[B, *shape, N, N]``, complex64 / complex128;
- ``complex``: complex fields ``[B, *shape]``, complex64 / complex128.

A prior's *precision* is the real floating dtype it draws in. It is held by a
non-persistent buffer (not in the ``state_dict``), so it follows ``.double()``,
``.float()`` and ``.to(dtype)`` together with the rest of a flow model; samplers and
trainers take the field dtype from the prior (``field_dtype()``), never from a model's
parameters. ``log_prob`` is the log density with respect to the domain's measure (Lebesgue
for real and complex fields, the angles for U(1), Haar for SU(N)), ``[B]`` in the
precision of the fields.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from enum import Enum
from typing import ClassVar, TypeVar

import torch
from torch import nn

from ..lattice import SU, rand, randn
from ..lattice.random import Generators
from .transform import real_dtype

__all__ = ["Domain", "HaarPrior", "NormalPrior", "Prior", "UniformAnglePrior", "cast_precision", "precision_dtype"]

#: precision names and the real dtypes they stand for
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}
M = TypeVar("M", bound=nn.Module)


class Domain(str, Enum):
    """Where a prior's fields live (see the module docstring)."""

    REAL = "real"
    ANGLES = "angles"
    SU_N = "su_n"
    COMPLEX = "complex"

    @property
    def is_complex(self) -> bool:
        """Whether fields of this domain are complex tensors."""
        return self in (Domain.SU_N, Domain.COMPLEX)


def precision_dtype(precision: torch.dtype | str, who: str = "prior") -> torch.dtype:
    """The real floating dtype of ``precision`` (``"float32"``, ``"float64"`` or a torch dtype)."""
    dtype = PRECISIONS.get(precision, precision) if isinstance(precision, str) else precision
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"{who}: precision = {precision!r}; allowed: float32, float64 (a name or a real torch dtype)")
    return dtype


def cast_precision(module: M, precision: torch.dtype | str) -> M:
    """``module`` (in place) at ``precision``: real floating tensors (a prior's precision
    too) to that dtype, complex ones to the complex dtype of that precision, others kept
    (``module.to(dtype)`` would drop the imaginary part of complex buffers)."""
    real = precision_dtype(precision, "cast_precision")
    cplx = _COMPLEX.get(real)

    def convert(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            return t.to(real)
        return t.to(cplx) if t.is_complex() and cplx is not None else t

    return module._apply(convert)


class Prior(nn.Module, ABC):
    """The base density ``r(z)`` of a flow; ``shape``: one configuration's shape (SU(N) adds ``N, N``).

    Subclasses set the class attribute ``domain`` and implement ``sample``,
    ``sample_chains`` and ``log_prob``; ``dtype`` arguments are field dtypes of the domain
    (``None``: ``field_dtype()``, this prior's precision).
    """

    domain: ClassVar[Domain]
    _precision: torch.Tensor

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.register_buffer("_precision", torch.empty(0), persistent=False)

    @property
    def precision(self) -> torch.dtype:
        """The real dtype this prior draws in (follows casts of the module)."""
        return real_dtype(self._precision.dtype)

    @property
    def device(self) -> torch.device:
        """The device this prior draws on (follows moves of the module)."""
        return self._precision.device

    def field_dtype(self, precision: torch.dtype | str | None = None) -> torch.dtype:
        """The dtype of this domain's fields at ``precision`` (``None``: the prior's own)."""
        real = self.precision if precision is None else precision_dtype(precision, f"{type(self).__name__}")
        if not self.domain.is_complex:
            return real
        if real not in _COMPLEX:
            raise ValueError(
                f"{type(self).__name__}: precision = {real}; allowed: torch.float32, torch.float64 "
                f"(domain {self.domain.value!r} has complex fields)"
            )
        return _COMPLEX[real]

    def resolve_dtype(self, dtype: torch.dtype | None) -> torch.dtype:
        """``dtype`` if it is a field dtype of this domain (``None``: ``field_dtype()``), else ``ValueError``."""
        if dtype is None:
            return self.field_dtype()
        expected = self.field_dtype(real_dtype(dtype))
        if dtype != expected:
            raise ValueError(
                f"{type(self).__name__}: dtype = {dtype}; allowed: {expected} (domain {self.domain.value!r})"
            )
        return dtype

    @abstractmethod
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """``n`` draws ``[n, *shape]`` from ``generator`` (``device`` ``None``: the prior's)."""

    @abstractmethod
    def sample_chains(self, gens: Generators, dtype: torch.dtype | None = None) -> torch.Tensor:
        """One draw per chain ``[B, *shape]``, chain ``b`` from ``gens[b]`` (on their device)."""

    @abstractmethod
    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log r(z)``, ``[B]``."""


class NormalPrior(Prior):
    """Independent normals of width ``scale`` at every site; ``shape`` is per configuration."""

    domain = Domain.REAL

    def __init__(self, shape: tuple[int, ...], scale: float = 1.0) -> None:
        if not scale > 0:
            raise ValueError(f"normal prior: scale = {scale}; allowed: > 0")
        super().__init__(shape)
        self.scale = float(scale)

    def sample(self, n, generator=None, dtype=None, device=None):
        dtype, device = self.resolve_dtype(dtype), self.device if device is None else device
        return self.scale * torch.randn((n, *self.shape), generator=generator, dtype=dtype, device=device)

    def sample_chains(self, gens, dtype=None):
        return self.scale * randn(gens, self.shape, self.resolve_dtype(dtype))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, z.ndim))
        n = math.prod(self.shape)
        return -0.5 * ((z / self.scale) ** 2).sum(dims) - n * (0.5 * math.log(2 * math.pi) + math.log(self.scale))


class UniformAnglePrior(Prior):
    """Uniform angles in ``[-pi, pi)`` (the Haar measure of U(1)); ``log r = -n log 2 pi``."""

    domain = Domain.ANGLES

    def sample(self, n, generator=None, dtype=None, device=None):
        dtype, device = self.resolve_dtype(dtype), self.device if device is None else device
        return (2 * torch.rand((n, *self.shape), generator=generator, dtype=dtype, device=device) - 1) * math.pi

    def sample_chains(self, gens, dtype=None):
        return (2 * rand(gens, self.shape, self.resolve_dtype(dtype)) - 1) * math.pi

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full(z.shape[:1], -math.log(2 * math.pi) * math.prod(self.shape), dtype=z.dtype, device=z.device)


class HaarPrior(Prior):
    """Haar-random SU(``n``) matrices at every site of ``shape`` (which ends in ``n, n``); the
    density against Haar measure is 1 (``log r = 0``), the measure SU(N) actions are given in."""

    domain = Domain.SU_N

    def __init__(self, shape: tuple[int, ...]) -> None:
        if len(shape) < 2 or shape[-1] != shape[-2] or shape[-1] < 2:
            raise ValueError(f"haar prior: shape = {tuple(shape)}; allowed: (..., N, N) with N >= 2")
        super().__init__(shape)

    def _group(self) -> SU:
        return SU(self.shape[-1])

    def sample(self, n, generator=None, dtype=None, device=None):
        dtype, device = self.resolve_dtype(dtype), self.device if device is None else device
        if generator is None:  # a generator seeded from torch's global one
            generator = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,)).item()))
        return self._group().haar([generator], (n, *self.shape[:-2]), dtype=dtype)[0].to(device)

    def sample_chains(self, gens, dtype=None):
        return self._group().haar(gens, self.shape[:-2], dtype=self.resolve_dtype(dtype))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(z.shape[:1], dtype=real_dtype(z.dtype), device=z.device)
