import math

import pytest
import torch

from lqcdml.lattice import SU, U1, Real, algebra_gradient, group_from_name, make_generators

SUN = [SU(2), SU(3)]


@pytest.mark.parametrize("g", SUN, ids=str)
def test_generators_are_hermitian_traceless_and_normalised(g):
    t = g.generators()
    assert t.shape == (g.n**2 - 1, g.n, g.n)
    assert torch.allclose(t, t.mH, atol=0)
    assert torch.allclose(torch.einsum("aii->a", t), torch.zeros(1, dtype=t.dtype), atol=1e-15)
    gram = torch.einsum("aij,bji->ab", t, t)
    assert torch.allclose(gram, 0.5 * torch.eye(g.n**2 - 1, dtype=t.dtype), atol=1e-15)


@pytest.mark.parametrize("g", [SU(2), SU(3), SU(4)], ids=str)
def test_exponential_map_is_in_group_and_matches_matrix_exp(g):
    gens = make_generators(5, 3)
    p = 2.5 * g.random_momentum(gens, (7,))
    u = g.expi(p)
    assert g.deviation(u) < 1e-13
    assert torch.allclose(u, torch.linalg.matrix_exp(1j * p), atol=1e-13)
    # coefficient round trip
    assert torch.allclose(g.from_coefficients(g.coefficients(p)), p, atol=1e-14)


def test_su2_closed_form_exponential_at_tiny_argument():
    g = SU(2)
    p = 1e-10 * g.random_momentum(make_generators(1, 1), (3,))
    assert torch.allclose(g.expi(p), torch.linalg.matrix_exp(1j * p), atol=1e-16)


@pytest.mark.parametrize("g", SUN, ids=str)
def test_projection_restores_group_and_fixes_group_elements(g):
    gens = make_generators(2, 2)
    u = g.haar(gens, (50,))
    assert g.deviation(u) < 1e-13
    assert torch.allclose(g.project(u), u, atol=1e-13)
    noisy = u + 1e-3 * torch.randn(u.shape, dtype=u.dtype, generator=torch.Generator().manual_seed(0))
    assert g.deviation(noisy) > 1e-4
    assert g.deviation(g.project(noisy)) < 1e-13


@pytest.mark.parametrize("g", SUN, ids=str)
def test_reunitarize_puts_a_nearby_matrix_on_the_group_smoothly(g):
    """Group elements unchanged to rounding; a matrix 1e-3 off the group back on it to rounding,
    within O(1e-3) of where it was (next to the nearest element, ``project``); finite gradients;
    SU(4) refused."""
    u = g.haar(make_generators(3, 2), (50,))
    assert (g.reunitarize(u) - u).abs().max() < 1e-14
    noisy = u + 1e-3 * torch.randn(u.shape, dtype=u.dtype, generator=torch.Generator().manual_seed(1))
    back = g.reunitarize(noisy)
    assert g.deviation(back) < 1e-14
    assert (back - noisy).abs().max() < 1e-2 and (back - g.project(noisy)).abs().max() < 1e-2
    noisy.requires_grad_(True)
    g.re_trace(g.reunitarize(noisy)).sum().backward()
    assert torch.isfinite(torch.view_as_real(noisy.grad)).all()
    with pytest.raises(ValueError, match="allowed: SU"):
        SU(4).reunitarize(SU(4).haar(make_generators(1, 1), (2,)))


@pytest.mark.parametrize("g", SUN, ids=str)
def test_haar_moments(g):
    """Haar SU(N): <tr U> = 0, <|tr U|^2> = 1, and invariance of the law under left shifts."""
    u = g.haar(make_generators(3, 4), (5000,))
    tr = torch.diagonal(u, dim1=-2, dim2=-1).sum(-1)
    n = tr.numel()
    assert abs(tr.mean()) < 5 / math.sqrt(n)
    assert abs(tr.abs().square().mean() - 1) < 5 * math.sqrt(2.0 / n)
    v = g.haar(make_generators(4, 1), (1,))[0, 0] @ u
    tr_v = torch.diagonal(v, dim1=-2, dim2=-1).sum(-1)
    assert abs(tr_v.abs().square().mean() - 1) < 5 * math.sqrt(2.0 / n)


@pytest.mark.parametrize("g", [Real(), U1(), SU(2), SU(3)], ids=str)
def test_momenta_normalisation_matches_kinetic_term(g):
    """p^a ~ N(0,1): <K> = dim(algebra)/2 per site and <K^2> - <K>^2 = dim/2."""
    shape = (4000,)
    p = g.random_momentum(make_generators(9, 2), shape)
    k_per_site = g.kinetic(p) / shape[0]
    sigma = math.sqrt(g.algebra_dim / 2 / shape[0])  # std of the per-site mean of K
    assert torch.all((k_per_site - g.algebra_dim / 2).abs() < 5 * sigma)
    c = g.coefficients(p) if isinstance(g, SU) else p.unsqueeze(-1)
    assert torch.allclose(g.kinetic(p), 0.5 * c.square().sum(dim=(1, 2)), rtol=1e-13)


def test_near_identity_elements_are_close_to_one():
    g = SU(3)
    u = g.near_identity(make_generators(0, 1), (10,), 1e-3)
    assert g.deviation(u) < 1e-13
    assert (u - torch.eye(3, dtype=u.dtype)).abs().max() < 1e-2


def test_u1_projection_wraps_into_principal_interval():
    q = torch.tensor([3 * math.pi, -math.pi, math.pi, 0.1 - 4 * math.pi], dtype=torch.float64)
    out = U1().project(q)
    assert torch.all(out > -math.pi - 1e-15) and torch.all(out <= math.pi + 1e-15)
    assert torch.allclose(torch.cos(out), torch.cos(q), atol=1e-14)


@pytest.mark.parametrize("g", SUN, ids=str)
def test_algebra_gradient_matches_finite_differences(g):
    """d/dw f(exp(i w t^a) U) at w = 0 for f = Re tr(M U) summed, by central differences."""
    gens = make_generators(7, 1)
    u = g.haar(gens, (3,))
    m = g.haar(gens, (3,)) * 1.3

    def f(x):
        return torch.diagonal(m @ x, dim1=-2, dim2=-1).sum(-1).real.sum(dim=-1)

    grad = g.coefficients(algebra_gradient(f, u, g))
    h = 1e-5
    t = g.generators()
    for a in range(g.algebra_dim):
        plus = f(torch.linalg.matrix_exp(1j * h * t[a]) @ u)
        minus = f(torch.linalg.matrix_exp(-1j * h * t[a]) @ u)
        fd = (plus - minus) / (2 * h)
        # site 1 only receives its own derivative: compare the sum over sites
        assert torch.allclose(grad[..., a].sum(dim=-1), fd, atol=1e-8)


@pytest.mark.parametrize("g", [SU(2), SU(3), SU(4), U1(), Real()], ids=str)
def test_ambient_gradient_gives_the_derivatives_along_perturb(g):
    """``from_ambient_gradient(q, dS/dq)`` equals ``dS/dw^a`` along ``perturb(q, w)`` at ``w = 0``
    (the definition ``algebra_gradient`` had before) to 1e-13, for a non-linear ``S`` of every
    entry: SU(N) with N = 2, 3 (the kernel's product) and 4 (torch's), angles, real fields."""
    gens = make_generators(8, 2)
    if isinstance(g, SU):
        q, m = g.haar(gens, (3, 2)), 1.3 * g.haar(make_generators(9, 2), (3, 2))

        def s(x):
            w = torch.diagonal(m @ x @ x, dim1=-2, dim2=-1).sum(-1)
            return (w.real**2 + w.imag).reshape(2, -1).sum(1)
    else:
        q, m = torch.randn(2, 3, 4, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)

        def s(x):
            return (torch.sin(x) * m + x**3).reshape(2, -1).sum(1)

    leaf = q.clone().requires_grad_()
    (grad,) = torch.autograd.grad(s(leaf).sum(), leaf)
    w = torch.zeros(q.shape[: q.ndim - g.internal_ndim] + (g.algebra_dim,), dtype=torch.float64, requires_grad=True)
    (ref,) = torch.autograd.grad(s(g.perturb(q, w)).sum(), w)
    assert torch.allclose(g.from_ambient_gradient(q, grad), g.from_coefficients(ref), atol=1e-13, rtol=0)


def test_group_from_name():
    assert group_from_name("su3") == SU(3)
    assert isinstance(group_from_name("U1"), U1)
    with pytest.raises(ValueError, match="allowed"):
        group_from_name("so3")
    with pytest.raises(ValueError, match="N = 1"):
        SU(1)


@pytest.mark.parametrize("scale", [1e-9, 1e-3, 0.2, 0.8, 1.3, 50.0])
def test_su3_cayley_hamilton_exponential_matches_matrix_exp(scale):
    g = SU(3)
    p = g.random_momentum(make_generators(6, 2), (200,))
    p = scale * p / torch.linalg.matrix_norm(p).amax()  # largest Frobenius norm = scale
    u = g.expi(p)
    assert (u - torch.linalg.matrix_exp(1j * p)).abs().max() < 1e-14 * max(1.0, scale)
    assert g.deviation(u) < 1e-13
