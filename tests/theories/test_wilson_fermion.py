import numpy as np
import pytest
import torch

from lqcdml.lattice import SU, gauge_transform, make_generators
from lqcdml.observables.fermion import dense_operator
from lqcdml.theories.wilson_fermion import WilsonOperator, WilsonPseudofermion, gamma5, gamma_matrices

from ..helpers import random_links


def test_gamma_algebra_and_gamma5():
    g = gamma_matrices()
    eye = torch.eye(4, dtype=g.dtype)
    for mu in range(4):
        assert torch.equal(g[mu], g[mu].mH)
        for nu in range(4):
            assert (g[mu] @ g[nu] + g[nu] @ g[mu] - 2 * (mu == nu) * eye).abs().max() == 0
    assert torch.equal(gamma5(), torch.diag(torch.tensor([1, 1, -1, -1], dtype=g.dtype)))


@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_gamma5_hermiticity(group):
    op = WilsonOperator(-0.2, group)
    links = random_links(group, (4, 2, 2, 2, 2), n_chains=1, seed=4)
    d = dense_operator(op, links)
    g5 = torch.kron(torch.eye(16, dtype=d.dtype), torch.kron(gamma5(), torch.eye(group.n, dtype=d.dtype)))
    assert (g5 @ d @ g5 - d.mH).abs().max() < 1e-12
    n = d.shape[0]
    basis = torch.eye(n, dtype=d.dtype).reshape(n, 2, 2, 2, 2, 4, group.n)
    dag = op.apply_dagger(links.expand(n, *links.shape[1:]), basis).reshape(n, n).T
    assert (dag - d.mH).abs().max() < 1e-12


def test_kappa_form_is_2_kappa_times_mass_form():
    op = WilsonOperator.from_kappa(0.13, SU(3))
    assert abs(op.kappa() - 0.13) < 1e-15 and abs(op.mass - (1 / 0.26 - 4)) < 1e-14
    links = random_links(SU(3), (4, 2, 2, 2, 2), n_chains=1)
    psi = torch.randn(1, 2, 2, 2, 2, 4, 3, dtype=torch.complex128)
    d_kappa = psi - 0.13 * op.hop(links, psi)
    assert (d_kappa - 2 * 0.13 * op.apply(links, psi)).abs().max() < 1e-13


def test_gauge_covariance():
    group = SU(3)
    op = WilsonOperator(0.1, group)
    links = random_links(group, (4, 2, 2, 2, 2), seed=8)
    omega = group.haar(make_generators(9, 2), (2, 2, 2, 2))
    psi = torch.randn(2, 2, 2, 2, 2, 4, 3, dtype=torch.complex128)
    rot = torch.einsum("...ij,...sj->...si", omega, psi)
    lhs = op.apply(gauge_transform(links, omega, group), rot)
    rhs = torch.einsum("...ij,...sj->...si", omega, op.apply(links, psi))
    assert (lhs - rhs).abs().max() < 1e-12


def test_free_wilson_trace_matches_momentum_sum():
    """U = 1: tr D^-1 / V = 4 N <(m + sum(1 - cos p)) / ((m + sum(1 - cos p))^2 + sum sin^2 p)>."""
    group, m = SU(2), 0.2
    op = WilsonOperator(m, group)
    d = dense_operator(op, group.identity((1, 4, 4, 2, 2, 2)))
    value = torch.linalg.inv(d).diagonal().sum().real.item() / 32
    p_t = (2 * np.arange(4) + 1) * np.pi / 4
    p_s = 2 * np.arange(2) * np.pi / 2
    grid = np.meshgrid(p_t, p_s, p_s, p_s, indexing="ij")
    a = m + sum(1 - np.cos(p) for p in grid)
    s2 = sum(np.sin(p) ** 2 for p in grid)
    assert abs(value - 4 * 2 * np.mean(a / (a**2 + s2))) < 1e-12


@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_pseudofermion_force_equals_autograd(group):
    pf = WilsonPseudofermion(WilsonOperator(0.3, group))
    links = random_links(group, (4, 2, 2, 2, 2), seed=1)
    phi = pf.heat_bath(links, make_generators(5, 2))
    assert (pf.force(links, phi) - pf.autograd_force(links, phi)).abs().max() < 1e-10
