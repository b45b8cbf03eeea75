"""Lattice geometry: shifts with boundary phases, coordinates, checkerboard masks.

Site fields are batched tensors ``[B, L_0, ..., L_{d-1}, *internal]``: axis 0 is the
batch of independent chains, axes ``1..d`` are the lattice (axis 1 is time), and any
trailing axes are internal (colour, spin). A link field ``[B, d, L_0, ..., *internal]``
is a stack of ``d`` site fields; ``links[:, mu]`` is the site field of direction ``mu``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["shift", "coordinates", "checkerboard", "parity", "volume"]


def volume(shape: Sequence[int]) -> int:
    """Number of sites of a lattice with extents ``shape``."""
    v = 1
    for extent in shape:
        v *= int(extent)
    return v


def shift(
    field: torch.Tensor,
    mu: int,
    step: int = 1,
    *,
    phase: complex | float | None = None,
    first_axis: int = 1,
) -> torch.Tensor:
    """Return ``g(x) = field(x + step * mu_hat)`` on the periodic lattice.

    ``phase`` is the boundary phase of direction ``mu``: a value that crosses the
    boundary forwards (from ``L - 1`` to ``0``) picks up ``phase``, one that crosses it
    backwards picks up ``conj(phase)``. ``phase = -1`` gives antiperiodic boundary
    conditions; ``None`` (or ``1``) periodic ones. ``first_axis`` is the tensor axis of
    lattice direction 0 (1 for site fields).
    """
    axis = first_axis + mu
    extent = field.shape[axis]
    out = torch.roll(field, shifts=-step, dims=axis)
    if phase is None or phase == 1:
        return out
    factors = []
    for x in range(extent):
        wraps = (x + step) // extent
        factors.append(phase**wraps if wraps >= 0 else complex(phase).conjugate() ** (-wraps))
    if all(f == 1 for f in factors):
        return out
    if not field.is_complex() and any(complex(f).imag != 0 for f in factors):
        raise ValueError(f"shift: complex boundary phase {phase!r} on a real field")
    dtype = field.dtype
    values = [complex(f) for f in factors] if field.is_complex() else [complex(f).real for f in factors]
    shape = [1] * field.ndim
    shape[axis] = extent
    return out * torch.tensor(values, dtype=dtype, device=field.device).reshape(shape)


def coordinates(shape: Sequence[int], device: torch.device | str | None = None) -> list[torch.Tensor]:
    """Integer coordinate grids ``x_mu`` of a lattice, each of shape ``shape``."""
    ranges = [torch.arange(int(L), device=device) for L in shape]
    return list(torch.meshgrid(*ranges, indexing="ij"))


def parity(shape: Sequence[int], device: torch.device | str | None = None) -> torch.Tensor:
    """Site parity ``(x_0 + ... + x_{d-1}) mod 2`` as an integer tensor of shape ``shape``."""
    total = torch.stack(coordinates(shape, device)).sum(dim=0)
    return torch.remainder(total, 2)


def checkerboard(shape: Sequence[int], which: int = 0, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean mask of the sites with parity ``which`` (0: even, 1: odd).

    A checkerboard is a proper two-colouring of the periodic lattice only if every
    extent is even; an odd extent raises ``ValueError`` naming the offending axis.
    """
    for mu, extent in enumerate(shape):
        if int(extent) % 2:
            raise ValueError(
                f"checkerboard: lattice extent L_{mu} = {extent} is odd; "
                "an even-odd split of a periodic lattice needs every extent even"
            )
    if which not in (0, 1):
        raise ValueError(f"checkerboard: which = {which!r}; allowed: 0 (even) or 1 (odd)")
    return parity(shape, device) == which
