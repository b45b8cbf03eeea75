"""Self-learning HMC: the effective-action force, reversibility, and exactness of the chain."""

import math

import pytest
import torch

from lqcdml.lattice import SU, algebra_gradient, make_generators
from lqcdml.nn import cask_net, stout_net
from lqcdml.observables import chiral_condensate, plaquette
from lqcdml.samplers import HMC, Integrator, Level, SmearedPseudofermion, slhmc
from lqcdml.theories import WilsonGaugeAction
from lqcdml.theories.staggered import StaggeredOperator, StaggeredPseudofermion, _dense_action

from ..helpers import random_links

ALL = ("plaquette", "rectangle", "polyakov")


def _random_weights(net, scale, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def _pf(group, mass, tol=1e-13):
    return StaggeredPseudofermion(StaggeredOperator(mass, group), 4, tol=tol)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("kind", ["stout", "cask"])
def test_effective_force_equals_autograd_of_the_dense_effective_action(n, kind):
    group = SU(n)
    links = random_links(group, (4, 4, 2, 2, 2), seed=n, n_chains=1)
    net = stout_net(group, 4, 2, ALL) if kind == "stout" else cask_net(group, 4, 1, ALL, extent=2)
    _random_weights(net, 0.04, seed=n)
    base = _pf(group, 0.45)
    phi = _pf(group, 0.3).heat_bath(links, make_generators(11, 1))
    effective = SmearedPseudofermion(base, net)
    force = effective.force(links, phi)
    reference = algebra_gradient(lambda u: _dense_action(base, net(u), phi), links, group)
    assert float(reference.abs().max()) > 0.1
    assert float((force - reference).abs().max()) < 1e-10
    # the action is the base action on the smeared links
    assert torch.allclose(effective.action(links, phi), base.action(net(links).detach(), phi), rtol=1e-12)


def _sampler(net, m=0.3, m_eff=0.6, beta=2.0, n_steps=8, tau=0.5):
    group = SU(2)
    gauge = WilsonGaugeAction(beta, group)
    return slhmc(
        gauge,
        [_pf(group, m, 1e-12)],
        [SmearedPseudofermion(_pf(group, m_eff, 1e-12), net)],
        n_steps=n_steps,
        scheme="omelyan",
        trajectory_length=tau,
    )


def _assert_reversible(sampler) -> None:
    """Forward over 0.5, momenta flipped, back: the start to 1e-10 (and a real move)."""
    group = SU(2)
    links = random_links(group, (4, 4, 2, 2, 2), seed=5, n_chains=2)
    gens = make_generators(5, 2)
    md = sampler.integrator.bind([t.heat_bath(links, gens) for t in sampler.target_terms[1:]])
    p0 = group.random_momentum(gens, links.shape[1:-2])
    q1, p1 = md(links, p0, 0.5)
    q2, p2 = md(q1, -p1, 0.5)
    assert float((q2 - links).abs().max()) < 1e-10
    assert float((p2 + p0).abs().max()) < 1e-10
    assert float((q1 - links).abs().max()) > 1e-2


def test_molecular_dynamics_is_reversible():
    _assert_reversible(_sampler(_random_weights(stout_net(SU(2), 4, 2, ALL), 0.05, seed=3)))


def test_mean_of_exp_minus_delta_h_is_one():
    group = SU(2)
    net = _random_weights(stout_net(group, 4, 1, ("plaquette", "polyakov")), 0.05, seed=4)
    sampler = _sampler(net, m_eff=0.5, n_steps=4, tau=0.5)
    state = sampler.init(group.identity((32, 4, 2, 2, 2, 2)), seed=8)
    values = []
    for k in range(12):
        state, info = sampler.step(state)
        if k >= 4:
            values.append(torch.exp(-info.delta_H))
    x = torch.stack(values)  # [traj, chains]
    per_chain = x.mean(0)
    mean, err = float(per_chain.mean()), float(per_chain.std() / math.sqrt(per_chain.numel()))
    assert 0.05 < float(x.std()) and err > 0  # a real energy violation: the test is not trivially 1
    assert abs(mean - 1) < 4 * err, (mean, err)


def test_slhmc_with_a_poor_network_reproduces_hmc():
    """Random network weights and m_eff = 0.8 for m = 0.3: the MD is poor (acceptance well
    below HMC's), the chain exact. Both chains continue from the same HMC-thermalised fields;
    the errors come from the spread of the means of independent chains."""
    group = SU(2)
    gauge = WilsonGaugeAction(2.0, group)
    exact = _pf(group, 0.3, 1e-11)
    hmc = HMC(Integrator(group, (Level((exact,), 5, "omelyan"), Level((gauge,), 1, "omelyan"))), 0.5)
    net = _random_weights(stout_net(group, 4, 1, ALL), 0.04, seed=9)
    poor = slhmc(gauge, [exact], [SmearedPseudofermion(_pf(group, 0.8, 1e-11), net)], n_steps=5, trajectory_length=0.5)
    op = exact.operator
    n_chains = 24
    state = hmc.init(group.identity((n_chains, 4, 2, 2, 2, 2)), seed=20)
    for _ in range(12):
        state, _ = hmc.step(state)
    thermalised = state.fields

    results, acceptance = {}, {}
    for name, sampler, seed in (("hmc", hmc, 21), ("slhmc", poor, 22)):
        state = sampler.init(thermalised, seed=seed)
        rows, acc = [], []
        for k in range(20):
            state, info = sampler.step(state)
            acc.append(info.accepted.double().mean())
            cond = chiral_condensate(op, state.fields, make_generators(100 + k, n_chains), n_noise=2, tol=1e-9)
            rows.append(torch.stack([plaquette(state.fields, group), cond.mean(-1)], dim=-1))
        per_chain = torch.stack(rows).mean(0)  # independent chains: their means are independent
        results[name] = (per_chain.mean(0), per_chain.std(0) / math.sqrt(n_chains))
        acceptance[name] = float(torch.stack(acc).mean())
    (a, ea), (b, eb) = results["hmc"], results["slhmc"]
    assert acceptance["slhmc"] < 0.8 * acceptance["hmc"]  # the network really is poor
    pulls = (a - b) / torch.sqrt(ea**2 + eb**2)
    assert torch.all(pulls.abs() < 3.5), (a, b, ea, eb)
    assert torch.all(eb < 0.03 * b.abs())  # a meaningful comparison


# --- SLHMC on the lightest Hasenbusch ratio -------------------------------------------------


def _ratio_sampler(net, m=0.1, m_eff=0.25, masses=(0.5,), n_steps=4, tau=0.5, beta=2.0):
    from lqcdml.samplers import slhmc_hasenbusch
    from lqcdml.theories import ratio_at_mass

    group = SU(2)
    return slhmc_hasenbusch(
        WilsonGaugeAction(beta, group),
        [_pf(group, m, 1e-12)],
        list(masses),
        lambda ratio: SmearedPseudofermion(ratio_at_mass(ratio, m_eff), net),
        n_steps,
        [2] * len(masses),
        trajectory_length=tau,
    )


def test_ratio_slhmc_levels_and_target():
    from lqcdml.theories import StaggeredRatio

    net = _random_weights(stout_net(SU(2), 4, 1, ALL), 0.05, seed=3)
    sampler = _ratio_sampler(net, masses=(0.3, 0.6))
    levels = sampler.integrator.levels
    (eff,) = levels[0].terms
    assert isinstance(eff, SmearedPseudofermion) and eff.smear is net
    assert isinstance(eff.base, StaggeredRatio) and (eff.base.operator.mass, eff.base.heavy_mass) == (0.25, 0.3)
    # the heavier ratio and the heavy determinant are exact in the molecular dynamics
    assert [type(t).__name__ for t in (*levels[1].terms, *levels[2].terms)] == [
        "StaggeredRatio",
        "StaggeredPseudofermion",
    ]
    target = sampler.target_terms
    assert [type(t).__name__ for t in target] == [
        "WilsonGaugeAction",
        "StaggeredRatio",
        "StaggeredRatio",
        "StaggeredPseudofermion",
    ]
    assert (target[1].operator.mass, target[1].heavy_mass) == (0.1, 0.3)


def test_ratio_slhmc_is_reversible():
    _assert_reversible(_ratio_sampler(_random_weights(stout_net(SU(2), 4, 2, ALL), 0.05, seed=3)))


@pytest.mark.slow
def test_ratio_slhmc_with_a_poor_network_is_exact():
    """Random weights and m_eff = 0.4 for the ratio (0.05, 0.5): <exp(-dH)> = 1 with a real
    energy violation, and the plaquette of plain HMC from the same thermalised fields."""
    group = SU(2)
    gauge = WilsonGaugeAction(1.8, group)
    exact = _pf(group, 0.05, 1e-11)
    hmc = HMC(Integrator(group, (Level((exact,), 5, "omelyan"), Level((gauge,), 2, "omelyan"))), 0.5)
    net = _random_weights(stout_net(group, 4, 1, ALL), 0.04, seed=9)
    poor = _ratio_sampler(net, m=0.05, m_eff=0.4, masses=(0.5,), n_steps=3, tau=0.5, beta=1.8)
    n_chains = 24
    state = hmc.init(group.identity((n_chains, 4, 2, 2, 2, 2)), seed=20)
    for _ in range(10):
        state, _ = hmc.step(state)
    thermalised = state.fields
    results, acceptance, boltzmann = {}, {}, []
    for name, sampler, seed in (("hmc", hmc, 21), ("slhmc", poor, 22)):
        state = sampler.init(thermalised, seed=seed)
        rows, acc = [], []
        for _ in range(16):
            state, info = sampler.step(state)
            acc.append(info.accepted.double().mean())
            rows.append(plaquette(state.fields, group))
            if name == "slhmc":
                boltzmann.append(torch.exp(-info.delta_H))
        per_chain = torch.stack(rows).mean(0)
        results[name] = (per_chain.mean(), per_chain.std() / math.sqrt(n_chains))
        acceptance[name] = float(torch.stack(acc).mean())
    (a, ea), (b, eb) = results["hmc"], results["slhmc"]
    assert acceptance["slhmc"] < 0.9 * acceptance["hmc"]  # the network really is poor
    assert abs(a - b) < 3.5 * math.hypot(ea, eb), (a, b, ea, eb)
    x = torch.stack(boltzmann).mean(0)  # per chain
    mean, err = float(x.mean()), float(x.std() / math.sqrt(n_chains))
    assert abs(mean - 1) < 4 * err and float(torch.stack(boltzmann).std()) > 0.05, (mean, err)


def test_no_network_lowers_the_mismatch_below_the_low_mode_floor():
    """At fixed U the field's variance of d = S_f(m; U) - S_eff(m_eff; f(U)) is tr(S^2), S = 1 -
    C K_eff (C = M_m the field's covariance, K_eff the effective kernel). K_eff = M_eff(V)^-1 has
    eigenvalues <= 1 / m_eff^2 for any links V, so the modes of M_m below m_eff^2 keep
    tr(S^2) >= sum (1 - lambda_i / m_eff^2)^2: thin links and random networks alike."""
    from ..helpers import quadratic_form_matrix

    group = SU(2)
    links = random_links(group, (2, 4, 4), seed=12, n_chains=1)
    mass, m_eff = 0.05, 0.6
    exact = StaggeredPseudofermion(StaggeredOperator(mass, group), 4)
    base = StaggeredPseudofermion(StaggeredOperator(m_eff, group), 4)
    shape = (4, 4, 2)
    keep = exact.operator.even_mask(links).expand(shape)
    k_exact = quadratic_form_matrix(exact, links, shape, keep)
    lam = torch.linalg.eigvalsh(torch.linalg.inv(k_exact))  # eigenvalues of M_m (even sites)
    floor = float((torch.clamp(1 - lam / m_eff**2, min=0) ** 2).sum())
    assert floor > 1.0 and float(lam.min()) > mass**2 - 1e-12
    eye = torch.eye(lam.numel(), dtype=k_exact.dtype)
    variances = []
    for scale, seed in ((0.0, 0), (0.1, 1), (0.3, 2), (0.6, 3)):
        net = _random_weights(stout_net(group, 2, 2, ("plaquette", "rectangle")), scale, seed=seed)
        k_eff = quadratic_form_matrix(SmearedPseudofermion(base, net), links, shape, keep)
        s = eye - torch.linalg.solve(k_exact, k_eff)
        variances.append(float(torch.trace(s @ s).real))
    assert all(v >= floor * (1 - 1e-9) for v in variances), (variances, floor)
    thin = float(((m_eff**2 - mass**2) / (lam - mass**2 + m_eff**2)).square().sum())
    assert abs(variances[0] - thin) < 1e-8 * thin  # thin links: c_i = (m_eff^2 - m^2) / (mu_i^2 + m_eff^2)
