"""Independence Metropolis with an untrained flow still samples exp(-S) exactly."""

import numpy as np
import pytest
import torch

from lqcdml.analysis import estimate
from lqcdml.analysis.exact import free_scalar_propagator
from lqcdml.lattice import make_generators, randn
from lqcdml.nn import phi4_flow
from lqcdml.samplers import FlowMCMC, effective_sample_size, run_chain
from lqcdml.theories import Phi4Action


def _untrained(shape, seed=0, prior_scale=1.0):
    """Random weights. The prior is a little wider than the target: an independence
    sampler whose proposal has lighter tails than the target is not geometrically
    ergodic (chains stick in the tails)."""
    torch.manual_seed(seed)
    return phi4_flow(shape, n_layers=4, hidden=(4,), prior_scale=prior_scale).double()


def test_effective_sample_size_of_known_weights():
    assert effective_sample_size(torch.zeros(10)) == pytest.approx(1.0)
    # one weight dominates: ESS -> 1/N
    assert effective_sample_size(torch.tensor([0.0, -50.0, -50.0, -50.0])) == pytest.approx(0.25)
    lw = torch.log(torch.tensor([1.0, 2.0, 3.0]))
    assert effective_sample_size(lw) == pytest.approx(36 / (3 * 14))


@pytest.mark.slow
def test_untrained_flow_chain_reproduces_the_free_propagator():
    """Free field (standard convention, m^2 = 0.6) on 2 x 4: G(x) exact (analysis.exact)."""
    shape, m2 = (2, 4), 0.6
    action = Phi4Action(m2=m2, lam=0.0, convention="standard")
    sampler = FlowMCMC(_untrained(shape, prior_scale=0.8), action.action)
    state = sampler.init(0.5 * randn(make_generators(1, 32), shape), seed=7)
    state, rec = run_chain(sampler, state, 1500, measure=lambda p: p[:, :1, :1] * p, n_skip=100)
    acc = rec["accepted"].double().mean().item()
    assert 0.05 < acc < 0.95
    exact = free_scalar_propagator(shape, m2, "standard")
    g = rec["value"].numpy()
    for x in [(0, 0), (1, 0), (0, 1), (1, 2)]:
        est = estimate(g[:, :, x[0], x[1]])
        assert abs(est.pull(exact[x])) < 3.5, (x, est, exact[x])
    assert estimate(g[:, :, 0, 0]).error < 0.05 * exact[0, 0]  # the test has power


@pytest.mark.slow
def test_untrained_flow_chain_satisfies_schwinger_dyson_at_lambda_positive():
    """<(1/V) sum_x phi_x dS/dphi_x> = 1 exactly for the interacting theory."""
    shape = (4, 4)
    action = Phi4Action(m2=0.5, lam=1.0, convention="standard")
    sampler = FlowMCMC(_untrained(shape, seed=2, prior_scale=0.5), action.action)
    state = sampler.init(0.5 * randn(make_generators(3, 32), shape), seed=9)
    _, rec = run_chain(
        sampler,
        state,
        1500,
        n_skip=100,
        measure=lambda p: (p * action.force(p)).reshape(p.shape[0], -1).mean(dim=1),
    )
    assert rec["accepted"].double().mean() > 0.05
    est = estimate(rec["value"].numpy())
    assert abs(est.pull(1.0)) < 3.5, est
    assert est.error < 0.03


def test_rejected_proposals_keep_fields_and_weights():
    shape = (4, 4)
    action = Phi4Action(m2=-4.0, lam=8.0)
    sampler = FlowMCMC(_untrained(shape), action.action)
    state = sampler.init(0.3 * randn(make_generators(1, 8), shape), seed=3)
    new, info = sampler.step(state)
    keep = ~info.accepted
    assert torch.equal(new.fields[keep], state.fields[keep])
    assert torch.equal(new.extra["log_weight"][keep], state.extra["log_weight"][keep])
    # the stored log weight is that of the stored fields
    lw = -action.action(new.fields) - sampler.model.log_prob(new.fields)
    assert (lw - new.extra["log_weight"]).abs().max() < 1e-9
    assert np.isfinite(info.delta_H.numpy()).all()


@pytest.mark.slow
def test_untrained_u1_flow_chain_reproduces_the_exact_plaquette_and_susceptibility():
    """2D U(1), 4 x 4, beta = 0.5: random gauge-equivariant flow, exact Bessel results."""
    from lqcdml.analysis import derived_estimate
    from lqcdml.analysis.exact import (
        u1_2d_plaquette,
        u1_2d_plaquette_susceptibility,
        u1_2d_topological_susceptibility,
    )
    from lqcdml.lattice import U1
    from lqcdml.nn import u1_flow
    from lqcdml.observables import plaquette, topological_charge_u1_2d
    from lqcdml.theories import WilsonGaugeAction

    torch.manual_seed(4)
    model = u1_flow((4, 4), n_layers=8, hidden=(4,), n_mix=2).double()
    with torch.no_grad():  # away from the identity map it starts as
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    group = U1()
    action = WilsonGaugeAction(0.5, group)
    sampler = FlowMCMC(model, action.action)
    state = sampler.init(group.haar(make_generators(5, 32), (2, 4, 4)), seed=11)
    _, rec = run_chain(
        sampler,
        state,
        1200,
        n_skip=50,
        measure=lambda u: {"plaq": plaquette(u, group), "q2": topological_charge_u1_2d(u) ** 2 / 16},
    )
    assert rec["accepted"].double().mean() > 0.2
    plaq = estimate(rec["plaq"].numpy())
    assert abs(plaq.pull(u1_2d_plaquette(0.5, 16))) < 3.5, plaq
    assert plaq.error < 0.01
    chi = estimate(rec["q2"].numpy())
    assert abs(chi.pull(u1_2d_topological_susceptibility(0.5, 16))) < 3.5, chi
    p = rec["plaq"].numpy()
    chi_p = derived_estimate(lambda a, b: 16 * (b - a * a), [p, p * p])
    assert abs(chi_p.pull(u1_2d_plaquette_susceptibility(0.5, 16))) < 3.5, chi_p


@pytest.mark.slow
def test_trained_plaquette_flow_chain_reproduces_exact_results_at_beta_3():
    """2D U(1), 4 x 4, beta = 3 (where local updates of Q slow down): a briefly trained
    plaquette-coordinate flow with sink partners; the chain's plaquette and chi_t agree with
    the exact Bessel-function values, with charge autocorrelation near 1."""
    from lqcdml.analysis.exact import u1_2d_plaquette, u1_2d_topological_susceptibility
    from lqcdml.lattice import U1
    from lqcdml.nn import u1_plaquette_flow
    from lqcdml.observables import plaquette, topological_charge_u1_2d
    from lqcdml.theories import WilsonGaugeAction
    from lqcdml.train import FlowTrainer

    beta, group = 3.0, U1()
    action = WilsonGaugeAction(beta, group)
    torch.manual_seed(2)
    model = u1_plaquette_flow((4, 4), 2, (8,), 3, 4, n_partners=6, partner_hidden=(16,))
    trainer = FlowTrainer(model, action.action, 300, batch=64, lr=1e-2, seed=3, grad_clip=1.0)
    for _ in range(300):
        trainer.step()
    sampler = FlowMCMC(model.double(), action.action)
    state = sampler.init(sampler.start(make_generators(6, 32)).fields, seed=12)
    _, rec = run_chain(
        sampler,
        state,
        400,
        n_skip=10,
        measure=lambda u: {"plaq": plaquette(u, group), "q": topological_charge_u1_2d(u)},
    )
    assert rec["accepted"].double().mean() > 0.3
    plaq = estimate(rec["plaq"].numpy())
    assert abs(plaq.pull(u1_2d_plaquette(beta, 16))) < 3.5, plaq
    assert plaq.error < 0.003
    q = rec["q"].numpy()
    assert np.abs(q - np.round(q)).max() < 1e-9
    chi = estimate(q**2 / 16)
    assert abs(chi.pull(u1_2d_topological_susceptibility(beta, 16))) < 3.5, chi
    assert chi.tau_int < 3
