import math

import numpy as np
import pytest
import torch

from lqcdml.lattice import SU, checkerboard, gauge_transform, make_generators
from lqcdml.observables.fermion import dense_operator
from lqcdml.samplers import HMC, Integrator, Level, run_chain
from lqcdml.theories import WilsonGaugeAction
from lqcdml.theories.staggered import StaggeredOperator, StaggeredPseudofermion, staggered_phases

from ..helpers import random_links


def test_phases_follow_the_convention():
    eta = staggered_phases((2, 2, 2, 2))
    assert torch.all(eta[0] == 1)
    assert eta[1][1, 0, 0, 0] == -1 and eta[1][0, 1, 0, 0] == 1
    assert eta[3][1, 1, 1, 0] == -1 and eta[3][1, 1, 0, 0] == 1


@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_hopping_term_is_antihermitian_and_normal_operator_is_m2_minus_h2(group):
    op = StaggeredOperator(0.3, group)
    links = random_links(group, (4, 2, 2, 2, 4), n_chains=1)
    d = dense_operator(op, links)
    h = d - 0.3 * torch.eye(d.shape[0], dtype=d.dtype)
    assert (h + h.mH).abs().max() < 1e-12
    n = d.shape[0]
    basis = torch.eye(n, dtype=d.dtype).reshape(n, *links.shape[2:-2], group.n)
    normal = op.normal(links.expand(n, *links.shape[1:]), basis).reshape(n, n).T
    assert (normal - d.mH @ d).abs().max() < 1e-12


def test_hopping_connects_even_and_odd_sites_only_and_det_d_is_det_mee():
    group = SU(2)
    op = StaggeredOperator(0.4, group)
    links = random_links(group, (4, 2, 2, 2, 2), n_chains=1, seed=3)
    d = dense_operator(op, links)
    even = checkerboard((2, 2, 2, 2)).reshape(-1).repeat_interleave(group.n)
    h = d - 0.4 * torch.eye(d.shape[0], dtype=d.dtype)
    assert h[even][:, even].abs().max() == 0 and h[~even][:, ~even].abs().max() == 0
    m_ee = (d.mH @ d)[even][:, even]
    assert abs(torch.linalg.slogdet(d)[1] - torch.linalg.slogdet(m_ee)[1]) < 1e-10


@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_operator_is_gauge_covariant(group):
    op = StaggeredOperator(0.3, group)
    links = random_links(group, (4, 2, 2, 2, 4), seed=5)
    omega = group.haar(make_generators(7, 2), (2, 2, 2, 4))
    psi = torch.randn(2, 2, 2, 2, 4, group.n, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    rotated = op.apply(gauge_transform(links, omega, group), (omega @ psi.unsqueeze(-1)).squeeze(-1))
    expected = (omega @ op.apply(links, psi).unsqueeze(-1)).squeeze(-1)
    assert (rotated - expected).abs().max() < 1e-12


def test_free_condensate_from_the_exact_inverse():
    """SU(2), 4^4, m = 0.3, antiperiodic: Re tr D^-1 / V = 0.37639 (docs/reference.md#free-staggered)."""
    group = SU(2)
    op = StaggeredOperator(0.3, group)
    d = dense_operator(op, group.identity((1, 4, 4, 4, 4, 4)))
    value = torch.linalg.inv(d).diagonal().sum().real.item() / 4**4
    assert abs(value - 0.37639) < 5e-6
    # and from the momentum sum: tr D^-1 / V = N m / V sum_p 1 / (m^2 + sum_mu sin^2 p_mu)
    p_t = (2 * np.arange(4) + 1) * np.pi / 4
    p_s = 2 * np.arange(4) * np.pi / 4
    grid = np.meshgrid(p_t, p_s, p_s, p_s, indexing="ij")
    s2 = sum(np.sin(p) ** 2 for p in grid)
    assert abs(value - 2 * np.mean(0.3 / (0.09 + s2))) < 1e-12


@pytest.mark.parametrize("n_flavours", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_pseudofermion_forces_equal_autograd(n_flavours, group):
    op = StaggeredOperator(0.35, group)
    links = random_links(group, (4, 2, 2, 2, 2), seed=2)
    pf = StaggeredPseudofermion(op, n_flavours)
    phi = pf.heat_bath(links, make_generators(4, 2))
    assert (pf.force(links, phi) - pf.autograd_force(links, phi)).abs().max() < 1e-10


@pytest.mark.parametrize("n_flavours", [1, 2, 3])
def test_rhmc_heat_bath_makes_the_action_the_gaussian_norm(n_flavours):
    """phi = s(M) eta with s ~ M^{Nf/8} and S = phi^dag r(M) phi with r ~ M^{-Nf/4}: S = |eta|^2."""
    group = SU(2)
    op = StaggeredOperator(0.3, group)
    links = random_links(group, (4, 2, 2, 2, 4), seed=6)
    pf = StaggeredPseudofermion(op, n_flavours)
    gens = make_generators(11, 2)
    saved = [g.get_state() for g in gens]
    phi = pf.heat_bath(links, gens)
    for g, s in zip(gens, saved):
        g.set_state(s)
    from lqcdml.lattice import randn

    shape = (2, 2, 2, 4, 2)
    eta = torch.complex(randn(gens, shape), randn(gens, shape)) / math.sqrt(2)
    eta = eta * op.even_mask(links)
    assert torch.allclose(pf.action(links, phi), (eta.abs() ** 2).sum(dim=(1, 2, 3, 4, 5)), rtol=1e-10)
    assert phi.abs().max() > 0


@pytest.mark.parametrize("n_flavours", [1, 3])
def test_rhmc_weight_is_the_rooted_determinant(n_flavours):
    """Heat bath at U, action at U': <exp(-(S(U') - S(U)))> = (det M'_ee / det M_ee)^{Nf/4}.

    The Gaussian integral over phi makes this exact for the true matrix powers; it tests
    heat bath and action together against dense determinants.
    """
    group, n_draws = SU(2), 4000
    op = StaggeredOperator(0.5, group)
    one = random_links(group, (4, 2, 2, 2, 2), seed=8, n_chains=1)
    other = one @ group.near_identity(make_generators(9, 1), (4, 2, 2, 2, 2), 0.5)
    pf = StaggeredPseudofermion(op, n_flavours)
    phi = pf.heat_bath(one.expand(n_draws, *one.shape[1:]), make_generators(10, n_draws))
    delta = pf.action(other.expand(n_draws, *one.shape[1:]), phi) - pf.action(one.expand(n_draws, *one.shape[1:]), phi)
    weights = torch.exp(-delta)
    mean, err = weights.mean().item(), weights.std().item() / math.sqrt(n_draws)
    logdet = [torch.linalg.slogdet(dense_operator(op, u))[1].item() for u in (one, other)]
    exact = math.exp(n_flavours / 4 * (logdet[1] - logdet[0]))  # det M_ee = det D
    assert abs(mean - exact) < 3 * err, (mean, err, exact)
    assert abs(exact - 1) > 5 * err  # the test resolves the determinant ratio


def _fermion_hmc(n_flavours, n_steps=6):
    group = SU(2)
    gauge = WilsonGaugeAction(2.0, group)
    pf = StaggeredPseudofermion(StaggeredOperator(0.4, group), n_flavours)
    integ = Integrator(group, [Level((pf,), n_steps, "omelyan"), Level((gauge,), 2, "omelyan")])
    return HMC(integ, 1.0), pf


@pytest.mark.parametrize("n_flavours", [1, 2, 4])
def test_fermion_md_is_reversible(n_flavours):
    hmc, pf = _fermion_hmc(n_flavours)
    links = SU(2).near_identity(make_generators(1, 2), (4, 2, 2, 2, 4), 0.4)
    md = hmc.integrator.bind([pf.heat_bath(links, make_generators(2, 2))])
    p0 = SU(2).random_momentum(make_generators(3, 2), (4, 2, 2, 2, 4))
    q1, p1 = md(links, p0, 1.0)
    q2, p2 = md(q1, -p1, 1.0)
    assert (q2 - links).abs().max() < 1e-10 and (p2 + p0).abs().max() < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("n_flavours", [4, 3])
def test_fermion_hmc_satisfies_exp_minus_delta_h_equals_one(n_flavours):
    from lqcdml.analysis import estimate

    hmc, _ = _fermion_hmc(n_flavours, n_steps=1)  # coarse: dH of order 1, acceptance near 0.5
    start = SU(2).near_identity(make_generators(1, 8), (4, 2, 2, 2, 4), 0.5)
    state, rec = run_chain(hmc, hmc.init(start, 5), 120, n_skip=10)
    assert 0.25 < rec["accepted"].double().mean() < 0.9
    est = estimate(torch.exp(-rec["delta_H"]).numpy())
    assert abs(est.pull(1.0)) < 3, est
