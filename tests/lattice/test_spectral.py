"""Closed-form eigenphases of SU(2) and SU(3) (``lattice.spectral``): the eigenvalues of a
decomposition, class functions (conjugation invariance), the zero-sum convention, and the Haar
measure in eigenphases (Weyl integration formula) exactly on a grid."""

from __future__ import annotations

import math

import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.lattice.spectral import log_vandermonde2, su2_angle, su3_phases


def _haar(n: int, count: int, seed: int) -> torch.Tensor:
    return SU(n).haar(make_generators(seed, 1), (count,))[0]


def _max_eigenvalue_distance(u: torch.Tensor, phases: torch.Tensor) -> float:
    """Each eigenvalue of ``u`` against the nearest ``e^{i phase}``."""
    ev = torch.linalg.eigvals(u)
    return (ev.unsqueeze(-1) - torch.exp(1j * phases).unsqueeze(-2)).abs().min(-1).values.max().item()


def test_su3_phases_are_the_eigenvalues_sorted_and_sum_to_zero():
    u = _haar(3, 4000, 0)
    theta = su3_phases(u)
    assert _max_eigenvalue_distance(u, theta) < 1e-12
    assert torch.all(theta[..., 1:] >= theta[..., :-1])
    assert torch.all(theta.sum(-1).abs() < 1e-14)
    assert theta.abs().max() < 2 * math.pi


def test_su3_phases_are_a_class_function():
    u, x = _haar(3, 4000, 1), _haar(3, 4000, 2)
    assert (su3_phases(x @ u @ x.mH) - su3_phases(u)).abs().max() < 1e-12


def test_su3_phases_at_degenerate_eigenvalues():
    x = _haar(3, 64, 3)
    a = torch.linspace(0.1, 3.0, 64, dtype=torch.float64)
    double = torch.diag_embed(torch.exp(1j * torch.stack([a, a, -2 * a], -1)))
    u = x @ double @ x.mH
    expected = torch.sort(torch.stack([a, a, -2 * a], -1), -1).values
    theta = su3_phases(u)
    # zero-sum representatives may differ by 2 pi in one phase: compare the eigenvalues; a double
    # root of the characteristic polynomial keeps about half the digits (sqrt of eps: 1e-8 .. 1e-7)
    assert _max_eigenvalue_distance(u, theta) < 1e-6
    assert torch.all(theta.sum(-1).abs() < 1e-14)
    on_circle = [torch.sort(torch.remainder(x, 2 * math.pi), -1).values for x in (theta, expected)]
    assert (on_circle[0] - on_circle[1]).abs().max() < 1e-6
    # the identity and the other centre elements (a triple eigenvalue: Cardano's C = 0)
    centre = torch.exp(2j * math.pi * torch.arange(3, dtype=torch.float64) / 3)[:, None, None] * torch.eye(
        3, dtype=torch.complex128
    )
    assert su3_phases(centre[:1]).abs().max() == 0
    assert _max_eigenvalue_distance(centre, su3_phases(centre)) < 1e-4


def test_su2_angle_is_the_eigenphase_in_zero_pi():
    u = _haar(2, 4000, 4)
    theta = su2_angle(u)
    assert torch.all((theta >= 0) & (theta <= math.pi))
    assert _max_eigenvalue_distance(u, torch.stack([theta, -theta], -1)) < 1e-13
    x = _haar(2, 4000, 5)
    assert (su2_angle(x @ u @ x.mH) - theta).abs().max() < 1e-13


def test_su2_angle_is_accurate_near_zero_and_pi_and_finite_in_float32_off_the_group():
    """Relative accuracy at tiny angles (arccos of the half trace gave 0 below ~1e-8 in float64 and
    ~3e-4 in float32), and a finite gradient where float32 rounding leaves a link just off SU(2) with
    its half trace beyond 1 (what made SU(2) flow training in float32 stop on a NaN)."""
    sigma3 = torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128)
    for angle in (1e-3, 1e-6, 1e-9):
        for theta in (angle, math.pi - angle):
            u = torch.linalg.matrix_exp(1j * theta * sigma3)
            x = _haar(2, 1, 6)[0]
            assert abs(su2_angle(x @ u @ x.mH).item() - theta) < 1e-15 + 1e-9 * min(theta, math.pi - theta)
            small = su2_angle(u.to(torch.complex64)).item()
            assert abs(small - theta) < 1e-6 * max(1.0, theta) and (theta > 1 or abs(small / theta - 1) < 1e-5)
    near = torch.linalg.matrix_exp(1e-4j * sigma3).to(torch.complex64) * (1 + 1e-3)
    near.requires_grad_(True)
    assert (0.5 * near.diagonal().sum().real).item() > 1
    su2_angle(near).backward()
    assert torch.isfinite(torch.view_as_real(near.grad)).all()


def _torus(n: int, points: int) -> torch.Tensor:
    """Zero-sum phases ``[points^(n-1), n]`` on a uniform grid of the torus."""
    axis = 2 * math.pi * torch.arange(points, dtype=torch.float64) / points
    free = torch.cartesian_prod(*[axis] * (n - 1)).reshape(-1, n - 1)
    return torch.cat([free, -free.sum(-1, keepdim=True)], -1)


def test_weyl_integration_formula_exactly_on_a_grid():
    """``|Delta|^2`` and ``|Delta|^2 |tr U|^2`` are trigonometric polynomials: the grid mean is their
    torus mean exactly. Weyl: the Haar measure is ``|Delta|^2 / N!`` on the torus, so the mean of
    ``|Delta|^2`` is ``N!`` and the Haar mean of ``|tr U|^2`` is 1 (of ``tr U``: 0)."""
    for n in (2, 3):
        theta = _torus(n, 16)
        weight = torch.exp(log_vandermonde2(theta))
        trace = torch.exp(1j * theta).sum(-1)
        assert abs(weight.mean().item() - math.factorial(n)) < 1e-12
        assert abs((weight * trace.abs() ** 2).mean().item() / weight.mean().item() - 1) < 1e-12
        assert (weight * trace).mean().abs().item() < 1e-12


def test_haar_samples_have_the_weyl_density():
    """SU(2): ``theta`` has density ``(2/pi) sin^2 theta``: ``<cos theta> = 0``, ``<cos^2 theta> = 1/4``,
    ``<cos^4 theta> = 1/8``; SU(3): ``<|tr U|^2> = 1``, ``<|tr U|^4> = 2``; each within 4 sigma."""
    for values, exact in (
        (torch.cos(su2_angle(_haar(2, 40000, 6))), (0.0, 0.25, 0.125)),
        (torch.exp(1j * su3_phases(_haar(3, 40000, 7))).sum(-1).abs(), (None, 1.0, 2.0)),
    ):
        for power, target in zip((1, 2, 4), exact, strict=True):
            if target is None:
                continue
            sample = values**power
            error = sample.std().item() / math.sqrt(len(sample))
            assert abs(sample.mean().item() - target) < 4 * error, (power, sample.mean().item(), target)
