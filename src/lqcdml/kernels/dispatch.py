"""When the compiled kernels run, and the geometry tables they are given.

``enabled`` is the one policy: CPU tensors, complex64/complex128, no autograd graph to
record, N in {2, 3}, a build that loads and ``LQCDML_KERNELS`` not ``torch``
(``enabled_differentiable``: the same with autograd graphs, for a kernel with its backward). The first
call it admits builds the extension when this build does not exist yet (``build.build``:
one line on stderr); a build that fails, or does not load, settles the torch path for the
process with one line on stderr saying why.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from types import ModuleType

import torch

MODES = ("auto", "torch", "extension")
_DTYPES = (torch.complex64, torch.complex128)
_REAL_DTYPES = (torch.float32, torch.float64)
CPU_REASON = "this CPU lacks x86-64-v3 (AVX2, FMA); LQCDML_KERNEL_ARCH=native builds for it"

_guard = threading.Lock()
_module: ModuleType | None = None
_why: str | None = None  # why the torch path runs; settled once per process


def mode() -> str:
    """``LQCDML_KERNELS``: ``auto`` (default), ``torch`` or ``extension``."""
    value = os.environ.get("LQCDML_KERNELS", "auto")
    if value not in MODES:
        raise ValueError(f"LQCDML_KERNELS = {value!r}; allowed: {', '.join(MODES)}")
    return value


def _load(build_missing: bool, announce: bool) -> ModuleType | None:
    """The module: loaded, imported from a build, or (``build_missing``) built now."""
    global _module, _why
    with _guard:
        if _module is not None or _why is not None:
            return _module
        from . import build

        if not build.cpu_supported():
            _why = CPU_REASON
            return None
        try:
            _module = build.import_built()
            if _module is None and build_missing:
                _module = build.build()
        # no compiler, a broken build, a read-only folder: the torch path runs
        except Exception as exc:  # noqa: BLE001
            lines = str(exc).strip().splitlines() or [""]
            _why = f"{type(exc).__name__}: {lines[0][:300]}"
            if announce:
                print(f"lqcdml kernels: no compiled kernels, the torch path runs ({_why})", file=sys.stderr, flush=True)
        return _module


def reason() -> str | None:
    """Why this process runs torch for calls the kernels take (``None``: not, or not yet)."""
    return _why


def reset() -> None:
    """Forget the loaded module and a settled failure (tests)."""
    global _module, _why
    with _guard:
        _module, _why = None, None


def extension(required: bool = False) -> ModuleType | None:
    """The compiled module if built (no compiler runs); ``required`` (or ``LQCDML_KERNELS=
    extension``): build it now when missing, and raise when it cannot be had."""
    required = required or mode() == "extension"
    module = _load(build_missing=required, announce=not required)
    if module is None and required:
        raise RuntimeError(
            f"lqcdml kernels: unavailable ({_why or 'not built'}); use LQCDML_KERNELS=torch, or fix the build"
        )
    return module


def compiled() -> ModuleType:
    """The compiled module for a call ``enabled`` admitted (built now if missing; else raise)."""
    module = extension(required=True)
    assert module is not None  # required: raised instead
    return module


def enabled(*tensors: torch.Tensor, n: int) -> bool:
    """Whether the compiled kernels take this call on SU(``n``) tensors (else the torch reference
    does)."""
    return n in (2, 3) and _admitted(tensors, _DTYPES)


def enabled_differentiable(*tensors: torch.Tensor, n: int) -> bool:
    """``enabled`` for a kernel with its own backward (``ops.matmul``): autograd graphs allowed."""
    return n in (2, 3) and _admitted(tensors, _DTYPES, graphs=True)


def enabled_angles(*tensors: torch.Tensor) -> bool:
    """Whether the compiled kernels take this call on U(1) angles (float32/float64)."""
    return _admitted(tensors, _REAL_DTYPES)


def _admitted(tensors: tuple[torch.Tensor, ...], dtypes: tuple[torch.dtype, ...], graphs: bool = False) -> bool:
    """CPU tensors of ``dtypes`` with no autograd graph to record (unless ``graphs``: the kernel
    has its own backward), the mode not ``torch``, and a module loaded (built now on first use
    in ``auto``)."""
    if mode() == "torch":
        return False
    grad = torch.is_grad_enabled() and not graphs
    for t in tensors:
        if t.device.type != "cpu" or t.dtype not in dtypes or (grad and t.requires_grad):
            return False
    if mode() == "extension":
        return extension(required=True) is not None
    return _load(build_missing=True, announce=True) is not None


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
