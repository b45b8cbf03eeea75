"""Field-transformed HMC (``samplers.fthmc``): HMC bit for bit with the identity transform,
reversible molecular dynamics of the pulled-back action, ``<exp(-dH)> = 1``, and exact
plaquettes and charge with a deliberately poor transform (random masked stout or masked CASK
steps)."""

from __future__ import annotations

import math

import pytest
import torch

from lqcdml.analysis.exact import u1_2d_plaquette, u1_2d_topological_susceptibility
from lqcdml.analysis.exact_sun_2d import su_n_2d_plaquette
from lqcdml.lattice import SU, U1, make_generators
from lqcdml.nn.masked_cask import masked_cask_flow, masked_cask_stack
from lqcdml.nn.masked_stout import masked_stout_flow, masked_stout_stack
from lqcdml.nn.transform import Compose
from lqcdml.observables import plaquette
from lqcdml.observables.gauge import topological_charge_u1_2d
from lqcdml.samplers import HMC, ChainState, FieldTransformedHMC, Integrator, run_chain
from lqcdml.samplers.fthmc import LATENT
from lqcdml.theories import WilsonGaugeAction


def _poor_transform(group, shape, layers: int, seed: int) -> Compose:
    """Masked stout steps with random step sizes of either sign: a bijection far from useful."""
    torch.manual_seed(seed)
    stack = masked_stout_stack(shape, group, layers)
    for layer in stack:
        with torch.no_grad():
            layer.a.fill_(float(torch.randn(())))
    return Compose(stack)


def _poor_attention(group, shape, layers: int, seed: int) -> Compose:
    """Masked CASK steps with random output weights and inverse temperatures of either sign."""
    torch.manual_seed(seed)
    stack = masked_cask_stack(shape, group, layers)
    for layer in stack:
        with torch.no_grad():
            layer.c.copy_(2 * torch.randn(layer.c.shape, dtype=torch.float64))
            layer.beta.copy_(2 * torch.randn(layer.beta.shape, dtype=torch.float64))
    return Compose(stack)


def _hot(group, shape):
    return lambda gens: group.haar(gens, (len(shape), *shape))


def test_the_identity_transform_is_hmc_bit_for_bit():
    """An empty transform and U(1) masked stout steps at rho = 0 (through the whole pull-back:
    forward, vector-Jacobian product by autograd or written out, log-determinant) all give HMC's
    chain bit for bit."""
    group, shape, beta = U1(), (4, 4), 2.0
    action = WilsonGaugeAction(beta, group)
    hmc = HMC(Integrator.single(action, 6, "omelyan"), 1.0)
    reference = run_chain(hmc, hmc.start(make_generators(11, 3), _hot(group, shape)), 12)[0]
    for transform in (
        Compose([]),
        Compose(masked_stout_stack(shape, group, 4)),
        masked_stout_flow(shape, group, 4),
        masked_cask_flow(shape, group, 4),
    ):
        ft = FieldTransformedHMC(action, transform, 6, "omelyan", 1.0)
        state = run_chain(ft, ft.start(make_generators(11, 3), _hot(group, shape)), 12)[0]
        assert torch.equal(state.fields, reference.fields) and torch.equal(state.extra[LATENT], reference.fields)
        assert torch.equal(state.n_accepted, reference.n_accepted)


def test_the_pulled_back_molecular_dynamics_is_reversible():
    for group, shape, poor in [
        (U1(), (4, 4), _poor_transform),
        (SU(2), (4, 4), _poor_transform),
        (U1(), (4, 4), _poor_attention),
        (SU(2), (4, 4), _poor_attention),
    ]:
        ft = FieldTransformedHMC(WilsonGaugeAction(2.0, group), poor(group, shape, 4, 1), 8)
        gens = make_generators(2, 2)
        v0 = group.haar(gens, (len(shape), *shape))
        p0 = group.random_momentum(gens, (len(shape), *shape), dtype=v0.dtype)
        forward = ft.hmc.integrator.integrate(v0, p0, 0.7)
        back = ft.hmc.integrator.integrate(forward.q, -forward.p, 0.7)
        assert (back.q - v0).abs().max() < 1e-10 and (back.p + p0).abs().max() < 1e-10, group


def test_exp_minus_delta_h_averages_to_one_with_a_poor_transform():
    """U(1), 8 x 8, beta = 2, a coarse step (acceptance well below 1): ``<exp(-dH)> = 1``
    within four standard errors of the mean over 32 chains x 60 trajectories."""
    group, shape = U1(), (8, 8)
    ft = FieldTransformedHMC(WilsonGaugeAction(2.0, group), _poor_transform(group, shape, 4, 2), 4)
    _, rec = run_chain(ft, ft.start(make_generators(5, 32), _hot(group, shape)), 60, n_skip=10)
    w = torch.exp(-rec["delta_H"].to(torch.float64)).flatten()
    accepted = rec["accepted"].to(torch.float64).mean()
    assert 0.3 < accepted < 0.9, accepted
    assert abs(float(w.mean()) - 1) < 4 * float(w.std()) / math.sqrt(w.numel())


@pytest.mark.parametrize(
    ("poor", "n_steps", "seed"), [(_poor_transform, 3, 7), (_poor_attention, 3, 17)], ids=["stout", "cask"]
)
def test_a_poor_transform_samples_the_exact_u1_plaquette_and_charge_distribution(poor, n_steps, seed):
    """2D U(1), 8 x 8, beta = 1.5, four random masked stout or masked CASK steps (the CASK force
    by autograd): the plaquette and <Q^2> of U = F(V) agree with the exact finite-volume values
    (errors from 16 independent chains)."""
    group, shape, beta = U1(), (8, 8), 1.5
    ft = FieldTransformedHMC(WilsonGaugeAction(beta, group), poor(group, shape, 4, 3), n_steps)
    state = ft.start(make_generators(seed, 16), _hot(group, shape))

    def measure(u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"plaq": plaquette(u, group), "q2": topological_charge_u1_2d(u) ** 2}

    _, rec = run_chain(ft, state, 120, measure=measure, n_skip=20)
    assert 0.5 < float(rec["accepted"].to(torch.float64).mean()) < 0.98  # the accept/reject step acts
    volume = shape[0] * shape[1]
    for key, exact in (
        ("plaq", u1_2d_plaquette(beta, volume)),
        ("q2", volume * u1_2d_topological_susceptibility(beta, volume)),
    ):
        per_chain = rec[key].to(torch.float64).mean(0)
        mean, err = float(per_chain.mean()), float(per_chain.std()) / math.sqrt(per_chain.numel())
        assert abs(mean - exact) < 4 * err, (key, mean, err, exact)
        assert err < 0.1 * abs(exact)  # the test has power


def test_a_poor_transform_samples_the_exact_su2_plaquette_and_the_state_restores():
    group, shape, beta = SU(2), (4, 4), 2.0
    ft = FieldTransformedHMC(WilsonGaugeAction(beta, group), _poor_transform(group, shape, 2, 4), 4)
    state = ft.start(make_generators(9, 8), _hot(group, shape))
    state, _ = run_chain(ft, state, 10)
    restored = ChainState.from_dict(state.to_dict())
    a, _ = run_chain(ft, state, 2)
    b, _ = run_chain(ft, restored, 2)
    assert torch.equal(a.fields, b.fields) and torch.equal(a.extra[LATENT], b.extra[LATENT])
    _, rec = run_chain(ft, a, 30, measure=lambda u: plaquette(u, group))
    per_chain = rec["value"].to(torch.float64).mean(0)
    exact = su_n_2d_plaquette(beta, 2, shape[0] * shape[1])
    mean, err = float(per_chain.mean()), float(per_chain.std()) / math.sqrt(per_chain.numel())
    assert abs(mean - exact) < 4 * err and err < 0.03
