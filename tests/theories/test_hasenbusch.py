"""Hasenbusch mass preconditioning: forces, the split determinant, the heat baths."""

import math

import pytest
import torch

from lqcdml.lattice import SU, make_generators
from lqcdml.observables.fermion import dense_operator
from lqcdml.theories import (
    StaggeredOperator,
    StaggeredPseudofermion,
    StaggeredRatio,
    WilsonOperator,
    WilsonPseudofermion,
    WilsonRatio,
    hasenbusch_split,
    ratio_at_mass,
)

from ..helpers import quadratic_form_matrix as _kernel
from ..helpers import random_links


@pytest.mark.parametrize("n_flavours", [1, 2, 4, 8])
@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_staggered_ratio_force_equals_autograd(n_flavours, group):
    ratio = StaggeredRatio(StaggeredOperator(0.2, group), 0.5, n_flavours)
    links = random_links(group, (4, 2, 2, 2, 2), seed=3)
    phi = ratio.heat_bath(links, make_generators(4, 2))
    assert (ratio.force(links, phi) - ratio.autograd_force(links, phi)).abs().max() < 1e-10


@pytest.mark.parametrize("group", [SU(2), SU(3)], ids=str)
def test_wilson_ratio_force_equals_autograd(group):
    ratio = WilsonRatio(WilsonOperator(0.1, group), 0.6)
    links = random_links(group, (4, 2, 2, 2, 2), seed=1)
    phi = ratio.heat_bath(links, make_generators(5, 2))
    assert (ratio.force(links, phi) - ratio.autograd_force(links, phi)).abs().max() < 1e-10


@pytest.mark.parametrize("n_flavours", [4, 2, 8])
def test_staggered_split_determinants_multiply_to_the_original(n_flavours):
    """Gaussian weights det(K)^-1: heavy x ratios = light, on the terms' own actions (dense, 4 x 4)."""
    group = SU(2)
    links = random_links(group, (2, 4, 4), seed=7, n_chains=1)
    light = StaggeredPseudofermion(StaggeredOperator(0.15, group), n_flavours)
    terms = hasenbusch_split(light, [0.4, 0.9])
    field_shape = (4, 4, 2)
    if n_flavours == 8:
        keep = torch.ones(field_shape, dtype=torch.bool)
    else:
        keep = light.operator.even_mask(links).expand(field_shape)
    logdet = [torch.linalg.slogdet(_kernel(t, links, field_shape, keep))[1].item() for t in [light, *terms]]
    assert abs(logdet[0] - sum(logdet[1:])) < 1e-8, logdet
    # the split is not trivial: the heavy determinant carries a part of it only
    assert abs(logdet[0] - logdet[-1]) > 1.0


def test_wilson_split_determinants_multiply_to_the_original():
    group = SU(2)
    links = random_links(group, (2, 2, 2), seed=8, n_chains=1)
    light = WilsonPseudofermion(WilsonOperator(0.05, group))
    terms = hasenbusch_split(light, [0.5])
    field_shape = (2, 2, 4, 2)
    keep = torch.ones(field_shape, dtype=torch.bool)
    logdet = [torch.linalg.slogdet(_kernel(t, links, field_shape, keep))[1].item() for t in [light, *terms]]
    assert abs(logdet[0] - sum(logdet[1:])) < 1e-9, logdet
    assert abs(logdet[0] - logdet[-1]) > 1.0


@pytest.mark.parametrize(
    "term,mass,heavy_mass,eps",
    [
        ("staggered4", 0.3, 0.6, 0.7),
        ("staggered8", 0.3, 0.5, 0.7),
        ("staggered2", 0.05, 0.6, 1.0),
        ("wilson", 0.1, 0.8, 0.5),
    ],
)
def test_ratio_heat_bath_and_action_give_the_determinant_ratio(term, mass, heavy_mass, eps):
    """Heat bath at U, action at U': <exp(-(S(U') - S(U)))> = det K(U) / det K(U'), with
    det K of the ratio = [det M(m_h) / det M(m)]^a from dense operators. (The masses and the
    distance of U' keep the weights' variance finite: 2 K(U') - K(U) > 0.)"""
    group, n_draws = SU(2), 4000
    shape = (4, 2, 2, 2, 2)
    one = random_links(group, shape, seed=8, n_chains=1)
    other = one @ group.near_identity(make_generators(9, 1), shape, eps)
    if term == "wilson":
        ratio = WilsonRatio(WilsonOperator(mass, group), heavy_mass)
        power = 2.0  # det(D^dag D) = |det D|^2
    else:
        n_f = int(term.removeprefix("staggered"))
        ratio = StaggeredRatio(StaggeredOperator(mass, group), heavy_mass, n_f)
        power = 2.0 if n_f == 8 else n_f / 4  # det M_ee = det D; the full lattice: |det D|^2
    many = lambda u: u.expand(n_draws, *u.shape[1:])  # noqa: E731
    phi = ratio.heat_bath(many(one), make_generators(10, n_draws))
    weights = torch.exp(-(ratio.action(many(other), phi) - ratio.action(many(one), phi)))
    mean, err = weights.mean().item(), weights.std().item() / math.sqrt(n_draws)

    def logdet(op, u):
        return torch.linalg.slogdet(dense_operator(op, u))[1].item()

    light, heavy = ratio.operator, ratio.heavy
    exact = math.exp(
        power * ((logdet(light, other) - logdet(heavy, other)) - (logdet(light, one) - logdet(heavy, one)))
    )
    assert abs(mean - exact) < 3.5 * err, (mean, err, exact)
    assert abs(exact - 1) > 5 * err  # the test resolves the ratio


def test_rooted_ratio_heat_bath_makes_the_action_the_gaussian_norm():
    """phi = s(M) eta_e with s ~ (M / (M + d))^(a/2), S = phi^dag r(M) phi, r ~ ((M + d) / M)^a: S = |eta_e|^2."""
    from lqcdml.lattice import randn

    group = SU(2)
    ratio = StaggeredRatio(StaggeredOperator(0.1, group), 0.6, 3)
    links = random_links(group, (4, 2, 2, 2, 4), seed=6)
    gens = make_generators(11, 2)
    saved = [g.get_state() for g in gens]
    phi = ratio.heat_bath(links, gens)
    for g, s in zip(gens, saved):
        g.set_state(s)
    shape = (2, 2, 2, 4, 2)
    eta = torch.complex(randn(gens, shape), randn(gens, shape)) / math.sqrt(2)
    eta = eta * ratio.operator.even_mask(links)
    assert torch.allclose(ratio.action(links, phi), (eta.abs() ** 2).sum(dim=(1, 2, 3, 4, 5)), rtol=1e-10)


def test_split_refuses_masses_that_do_not_increase():
    light = StaggeredPseudofermion(StaggeredOperator(0.2, SU(2)), 4)
    for masses in ([], [0.1], [0.5, 0.4], [0.2]):
        with pytest.raises(ValueError, match="hasenbusch masses = .*allowed: at least one, strictly increasing"):
            hasenbusch_split(light, masses)
    terms = hasenbusch_split(light, [0.4, 0.8])
    assert [type(t).__name__ for t in terms] == ["StaggeredRatio", "StaggeredRatio", "StaggeredPseudofermion"]
    assert [t.operator.mass for t in terms] == [0.2, 0.4, 0.8]
    assert [t.heavy_mass for t in terms[:2]] == [0.4, 0.8]


def test_thin_mismatch_of_the_ratio_has_the_distribution_of_the_whole_action():
    """At fixed U, d = S_exact - S_eff at the exact heat bath's field is sum_i c_i |xi_i|^2 with
    c_i the eigenvalues of 1 - K_exact^{-1} K_eff; for the light action against m_eff and for the
    ratio (m, m_1) against (m_eff, m_1) both are (m_eff^2 - m^2) / (mu_i^2 + m_eff^2)."""
    group = SU(2)
    links = random_links(group, (2, 4, 4), seed=11, n_chains=1)
    mass, m_eff, m_1 = 0.1, 0.3, 0.7
    light = StaggeredPseudofermion(StaggeredOperator(mass, group), 4)
    eff = StaggeredPseudofermion(StaggeredOperator(m_eff, group), 4)
    ratio = hasenbusch_split(light, [m_1])[0]
    ratio_eff = ratio_at_mass(ratio, m_eff)
    field_shape = (4, 4, 2)
    keep = light.operator.even_mask(links).expand(field_shape)

    def coefficients(exact, effective):
        k_exact, k_eff = (_kernel(t, links, field_shape, keep) for t in (exact, effective))
        eye = torch.eye(k_exact.shape[0], dtype=k_exact.dtype)
        return torch.sort(torch.linalg.eigvals(eye - torch.linalg.solve(k_exact, k_eff)).real).values

    whole, split = coefficients(light, eff), coefficients(ratio, ratio_eff)
    assert (whole - split).abs().max() < 1e-9
    # and they are (m_eff^2 - m^2) / (M_eff eigenvalues) on the thin links
    k_eff_inv = _kernel(eff, links, field_shape, keep)  # S = phi^dag M^{-1} phi: K = M_eff^{-1}
    expected = torch.sort((m_eff**2 - mass**2) * torch.linalg.eigvalsh(k_eff_inv)).values
    assert (whole - expected).abs().max() < 1e-9
