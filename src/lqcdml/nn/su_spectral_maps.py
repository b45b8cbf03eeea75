"""Conjugation-equivariant maps of SU(2) and SU(3) that act on the eigenphases.

A map ``h(U) = X diag(e^{i theta'}) X^dag`` for ``U = X diag(e^{i theta}) X^dag``, with the phases
moved by a map ``theta' = f(theta)``, satisfies ``h(Y U Y^dag) = Y h(U) Y^dag`` for every ``Y``:
the building block of gauge-equivariant SU(N) flows (docs/reference.md#conjugation-equivariant).
The eigenvectors are never computed:

- SU(2): ``U = cos theta + (U - cos theta)``, so ``h(U) = (sin theta' / sin theta) U +
  (cos theta' - cos theta sin theta' / sin theta) 1``.
- SU(3): Sylvester's formula, ``h(U) = sum_k e^{i theta'_k} P_k`` with the spectral projectors
  ``P_k = prod_{j != k} (U - l_j) / (l_k - l_j)`` (distinct eigenvalues: Haar-almost every ``U``).

The density of ``h(U)`` for ``U`` with density ``q`` relative to Haar (Weyl integration formula):
``log q'(h(U)) = log q(U) - log_det``, ``log_det = log|det d theta'/d theta| + log|Delta(theta')|^2 -
log|Delta(theta)|^2`` (SU(2): ``log f'(theta) + 2 log(sin theta' / sin theta)``). ``f`` must map the
phases' cell onto itself (SU(2): ``[0, pi]`` with its end points fixed; SU(3): the sorted zero-sum
phases, ``theta_3 = -theta_1 - theta_2``, its Jacobian over ``(theta_1, theta_2)``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from ..lattice.spectral import log_vandermonde2, su2_angle, su3_phases

__all__ = ["PhaseMap", "su2_spectral_map", "su3_spectral_map"]

#: ``theta [...] or [..., 3] -> (theta', log|det d theta'/d theta| [...])``
PhaseMap = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _open_angles(theta: torch.Tensor) -> torch.Tensor:
    """``theta`` inside ``(0, pi)`` at its precision: at most the largest number below pi (float32's
    ``pi`` lies above pi, where ``sin`` is negative), at least the smallest normal number."""
    return theta.clamp(*_open_bounds(theta.dtype))


@functools.cache
def _open_bounds(dtype: torch.dtype) -> tuple[float, float]:
    """``(smallest normal, largest number below pi)`` of ``dtype`` (once per dtype: every layer asks)."""
    pi = torch.tensor(math.pi, dtype=dtype)
    return torch.finfo(dtype).tiny, torch.nextafter(pi, torch.zeros_like(pi)).item()


def su2_spectral_map(u: torch.Tensor, f: PhaseMap) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h(U) [..., 2, 2], log_det [...])`` for SU(2) matrices ``u`` and a map ``f`` of ``[0, pi]``.

    Angles in and out are kept inside ``(0, pi)`` at their precision (``_open_angles``): an end
    point, which rounding reaches (a spline's output rounded to 1 is float32's ``pi``), would make
    ``sin`` zero or negative and the log-determinant infinite or NaN."""
    theta = _open_angles(su2_angle(u))
    new, log_df = f(theta)
    new = _open_angles(new)
    ratio = torch.sin(new) / torch.sin(theta)
    eye = torch.eye(2, dtype=u.dtype, device=u.device)
    out = ratio[..., None, None] * u + (torch.cos(new) - torch.cos(theta) * ratio)[..., None, None] * eye
    return out, log_df + 2 * torch.log(torch.sin(new) / torch.sin(theta))


def su3_spectral_map(u: torch.Tensor, f: PhaseMap) -> tuple[torch.Tensor, torch.Tensor]:
    """``(h(U) [..., 3, 3], log_det [...])`` for SU(3) matrices ``u`` and a map ``f`` of the sorted
    zero-sum phases (``f`` returns phases ``[..., 3]`` summing to zero)."""
    theta = su3_phases(u)
    new, log_df = f(theta)
    lam = torch.exp(1j * theta).to(u.dtype)
    eye = torch.eye(3, dtype=u.dtype, device=u.device)
    out = torch.zeros_like(u)
    for k in range(3):
        others = [j for j in range(3) if j != k]
        proj = eye
        for j in others:
            proj = proj @ (u - lam[..., j, None, None] * eye) / (lam[..., k] - lam[..., j])[..., None, None]
        out = out + torch.exp(1j * new[..., k]).to(u.dtype)[..., None, None] * proj
    return out, log_df + log_vandermonde2(new) - log_vandermonde2(theta)
