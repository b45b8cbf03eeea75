"""Conjugation-equivariant SU(2) and SU(3) maps acting on the eigenphases (``nn.su_spectral_maps``):
equivariance and group membership to machine precision, the phases moved as asked, and the
density change against Haar equal to the determinant of the map's Jacobian in left-invariant
coordinates (computed by autograd): the Weyl factor is exact."""

from __future__ import annotations

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.lattice.spectral import su2_angle, su3_phases
from lqcdml.nn.su_spectral_maps import su2_spectral_map, su3_spectral_map

EPS = 0.3


def _su2_f(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``theta - (EPS/2) sin 2 theta``: monotone on ``[0, pi]``, end points fixed."""
    return theta - 0.5 * EPS * torch.sin(2 * theta), torch.log(1 - EPS * torch.cos(2 * theta))


def _su3_shift(theta: torch.Tensor) -> torch.Tensor:
    """``theta_k + EPS sum_j sin(theta_k - theta_j) / 3``: permutation-equivariant, zero-sum."""
    return theta + EPS * torch.sin(theta[..., :, None] - theta[..., None, :]).sum(-1) / 3


def _su3_f(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The shift and ``log|det d(theta'_1, theta'_2) / d(theta_1, theta_2)|`` (autograd, per matrix)."""

    def free(x: torch.Tensor) -> torch.Tensor:
        return _su3_shift(torch.cat([x, -x.sum(-1, keepdim=True)]))[:2]

    flat = theta.reshape(-1, 3)
    logdet = torch.stack([torch.linalg.slogdet(torch.func.jacrev(free)(t[:2]))[1] for t in flat])
    return _su3_shift(theta), logdet.reshape(theta.shape[:-1])


def _haar(n: int, count: int, seed: int) -> torch.Tensor:
    return SU(n).haar(make_generators(seed, 1), (count,))[0]


def test_the_maps_are_equivariant_and_stay_in_the_group():
    for n, spectral_map, f in ((2, su2_spectral_map, _su2_f), (3, su3_spectral_map, _su3_f)):
        u, y = _haar(n, 200, 1), _haar(n, 200, 2)
        h, log_det = spectral_map(u, f)
        hy, log_det_y = spectral_map(y @ u @ y.mH, f)
        assert (hy - y @ h @ y.mH).abs().max() < 1e-12, n
        assert (log_det_y - log_det).abs().max() < 1e-10, n
        eye = torch.eye(n, dtype=h.dtype)
        assert (h @ h.mH - eye).abs().max() < 1e-12 and (torch.linalg.det(h) - 1).abs().max() < 1e-12, n


def test_the_phases_move_as_asked():
    u2 = _haar(2, 200, 3)
    assert (su2_angle(su2_spectral_map(u2, _su2_f)[0]) - _su2_f(su2_angle(u2))[0]).abs().max() < 1e-7
    u3 = _haar(3, 200, 4)
    moved = su3_phases(su3_spectral_map(u3, _su3_f)[0])
    assert (moved - torch.sort(_su3_shift(su3_phases(u3)), -1).values).abs().max() < 1e-10


def _left_jacobian_logdet(u: torch.Tensor, spectral_map, f) -> float:
    """``log|det J|`` of ``omega -> h(U)^dag h(U exp(i omega . T))`` in the generators' coordinates
    at ``omega = 0``: the density change against Haar (a left-invariant measure)."""
    n = u.shape[-1]
    t = SU(n).generators()
    h0 = spectral_map(u[None], f)[0][0]

    def coords(omega: torch.Tensor) -> torch.Tensor:
        step = torch.linalg.matrix_exp(1j * torch.einsum("a,aij->ij", omega.to(t.dtype), t))
        moved = h0.mH @ spectral_map((u @ step)[None], f)[0][0]
        return 2 * torch.einsum("aij,ji->a", t, -1j * moved).real  # tr(t^a t^b) = delta / 2

    jac = torch.autograd.functional.jacobian(coords, torch.zeros(n * n - 1, dtype=torch.float64))
    return torch.linalg.slogdet(jac)[1].item()


def test_log_det_is_the_density_change_against_haar():
    for n, spectral_map, f in ((2, su2_spectral_map, _su2_f), (3, su3_spectral_map, _su3_f)):
        u = _haar(n, 6, 5)
        log_det = spectral_map(u, f)[1]
        for k in range(len(u)):
            assert abs(_left_jacobian_logdet(u[k], spectral_map, f) - log_det[k].item()) < 1e-8, (n, k)
