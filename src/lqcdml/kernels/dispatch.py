"""When the compiled kernels run, and the geometry tables they are given.

``enabled`` is the one policy: CPU tensors, complex64/complex128, no autograd graph to
record, N in {2, 3}, a built extension and ``LQCDML_KERNELS`` not ``torch``.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType

import torch

MODES = ("auto", "torch", "extension")
_DTYPES = (torch.complex64, torch.complex128)


def mode() -> str:
    """``LQCDML_KERNELS``: ``auto`` (default), ``torch`` or ``extension``."""
    value = os.environ.get("LQCDML_KERNELS", "auto")
    if value not in MODES:
        raise ValueError(f"LQCDML_KERNELS = {value!r}; allowed: {', '.join(MODES)}")
    return value


@functools.cache
def _load(required: bool) -> ModuleType | None:
    from . import build

    if not build.cpu_supported():
        if required:
            raise RuntimeError(
                "lqcdml kernels: this CPU lacks x86-64-v3 (AVX2, FMA); "
                "use LQCDML_KERNELS=torch, or LQCDML_KERNEL_ARCH=native and rebuild"
            )
        return None
    module = build.import_built()
    if module is None and required:
        module = build.build()  # compiles on demand (developers, a changed source)
    return module


def extension(required: bool = False) -> ModuleType | None:
    """The compiled module; ``None`` when not built (``required``: build it, or raise)."""
    return _load(required or mode() == "extension")


def enabled(*tensors: torch.Tensor, n: int) -> bool:
    """Whether the compiled kernels take this call (else the torch reference does)."""
    if mode() == "torch" or n not in (2, 3):
        return False
    grad = torch.is_grad_enabled()
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in _DTYPES or (grad and t.requires_grad):
            return False
    return extension() is not None


@functools.cache
def geometry(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Neighbour tables ``fwd[mu, x] = x + mu`` and ``bwd[mu, x] = x - mu``, ``[d, V]`` int64.

    Sites in lexicographic (row-major) order of ``shape``; periodic.
    """
    volume = 1
    for extent in shape:
        volume *= extent
    index = torch.arange(volume).reshape(shape)
    fwd = torch.stack([torch.roll(index, -1, mu).reshape(-1) for mu in range(len(shape))])
    bwd = torch.stack([torch.roll(index, 1, mu).reshape(-1) for mu in range(len(shape))])
    return fwd.contiguous(), bwd.contiguous()


@functools.cache
def boundary_signs(shape: tuple[int, ...], antiperiodic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Signs picked up by ``psi(x + mu)`` and ``psi(x - mu)``, ``[d, V]`` float64.

    ``-1`` where the hop crosses the time boundary (direction 0) of an antiperiodic field.
    """
    fwd = torch.ones((len(shape), *shape), dtype=torch.float64)
    bwd = torch.ones_like(fwd)
    if antiperiodic:
        fwd[0, -1] = -1.0
        bwd[0, 0] = -1.0
    return fwd.reshape(len(shape), -1), bwd.reshape(len(shape), -1)
